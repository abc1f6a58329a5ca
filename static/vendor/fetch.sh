#!/bin/sh
# Re-create the files of this folder: the Leaflet the maps load, served by Streamlit at
# app/static/vendor/ (server.enableStaticServing), so the maps draw without any CDN.
#
# Keeps only what the maps use: leaflet.js, leaflet.css, the images leaflet.css points to
# (layer control, default marker) and the licence. folium 0.20 asks for leaflet@1.9.3; the
# CDN addresses and these paths are paired in diagnosis/maps.py (LOCAL_ASSETS).
# Needs npm (reads the npm registry, which checks the tarball's integrity).
#
#     sh static/vendor/fetch.sh
set -eu
cd "$(dirname "$0")"
version=1.9.3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "leaflet@$version" >/dev/null && tar xzf "leaflet-$version.tgz")
rm -rf "leaflet-$version"
mkdir -p "leaflet-$version/images"
cp "$tmp/package/LICENSE" "$tmp/package/dist/leaflet.js" "$tmp/package/dist/leaflet.css" \
   "leaflet-$version/"
cp "$tmp/package/dist/images/"*.png "leaflet-$version/images/"
# The drawing tool of the app's custom territory (folium's Draw plugin asks for
# leaflet.draw 1.0.2 on cdnjs; the npm package 1.0.4 is its bug-fix release).
draw=1.0.4
(cd "$tmp" && npm pack --silent "leaflet-draw@$draw" >/dev/null && tar xzf "leaflet-draw-$draw.tgz")
rm -rf "leaflet-draw-$draw"
mkdir -p "leaflet-draw-$draw/images"
cp "$tmp/package/dist/leaflet.draw.js" "$tmp/package/dist/leaflet.draw.css" \
   "leaflet-draw-$draw/"  # MIT licence: see the header of leaflet.draw.js and package.json
cp "$tmp/package/dist/images/"spritesheet* "leaflet-draw-$draw/images/"
# Checked by tests/test_maps.py: a vendored file edited by hand fails the tests.
sha256sum "leaflet-$version/LICENSE" "leaflet-$version/leaflet.js" \
   "leaflet-$version/leaflet.css" "leaflet-$version/images/"*.png \
   "leaflet-draw-$draw/"*.js "leaflet-draw-$draw/"*.css "leaflet-draw-$draw/images/"* >SHA256SUMS
