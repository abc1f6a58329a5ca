"""Unknown is not none: a type is said absent only when a source that lists it all was loaded.

The demo's directory is partial (38 structures for the whole département, compiled from
public pages): it covers no type fully, so the report must never say « Aucune structure
dans le territoire » for PMI, crèches… on the demo; only the town halls (annuaire de
l'administration) are known completely. A FINESS record (which lists every PMI) makes
"aucune PMI" a finding.
"""

from __future__ import annotations

import pandas as pd

from data_sources.registry import covered_types
from data_sources.workspace import load_workspace
from diagnosis.overview import compute_overview, facility_coverage, offer_table
from diagnosis.report.synthesis import _findings


def test_demo_synthesis_names_no_type_absent_without_a_covering_source():
    ws = load_workspace("200000438")
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    cov = ov.summary["coverage"]
    assert all(v["status"] != "complete" for t, v in cov.items() if t != "mairie")
    findings, unknown = _findings(ov, access=None, gaps=None, cohorts=None)
    text = " ".join(findings)
    assert "Aucune structure dans le territoire" not in text
    missing = [t for t, f in ov.summary["facilities"].items() if f["count"] == 0]
    assert missing, "the demo EPCI lacks some types in the partial directory"
    assert "Offre non connue (aucune source complète chargée : ce n'est pas une absence)" in text
    assert unknown  # the page's « cannot say » then names the unknown offer
    table = offer_table(ov).set_index("Type")
    assert set(table["Offre connue"]) <= {"partielle", "inconnue"}


def test_a_covering_source_makes_absence_a_finding():
    ws = load_workspace("200000438")
    fac = ws.facilities.loc[ws.facilities["type"] != "pmi"]
    sources = [*ws.sources, {"key": "finess", "title": "FINESS", "covers": "pmi"}]
    ov = compute_overview(ws.territory, ws.communes, fac, sources=sources)
    assert ov.summary["coverage"]["pmi"]["status"] == "complete"
    findings, _ = _findings(ov, access=None, gaps=None, cohorts=None)
    first = next(f for f in findings if f.startswith("Aucune structure dans le territoire"))
    assert "centres de PMI" in first


def test_coverage_registry_and_statuses():
    assert covered_types("finess") == ("pmi",)
    assert covered_types("demo_directory") == () and covered_types("osm") == ()
    c = facility_coverage([], pd.DataFrame({"type": ["laep"]}), ["laep", "rpe"])
    assert c["laep"]["status"] == "partial" and c["rpe"]["status"] == "unknown"
