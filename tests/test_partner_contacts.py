"""Institutions get the contacts a loaded directory gives (issue 24: all « à chercher »).

The demo's town halls come from the annuaire de l'administration (DILA), with phones,
emails and websites: the « Commune » institutions of the demo EPCI take them, marked as
coming from the directory; the others (CAF, PMI, ARS…) stay « à contacter », empty.
"""

from __future__ import annotations

from data_sources.workspace import load_workspace
from diagnosis.analyses import compute_partners
from diagnosis.overview import compute_overview
from diagnosis.partners import FROM_DIRECTORY, TO_CONTACT


def test_town_hall_institutions_take_the_directory_contacts():
    ws = load_workspace("200000438")
    ov = compute_overview(ws.territory, ws.communes, ws.facilities, sources=ws.sources)
    inst = compute_partners(ov, ws.facilities).layers["institutions"].set_index(
        "organisation")
    halls = ws.facilities.loc[ws.facilities["type"].eq("mairie")].set_index("name")
    row = inst.loc["Mairie de Pontchâteau"]
    assert row["phone"] == halls.loc["Mairie de Pontchâteau", "phone"] != ""
    assert row["contact_status"] == FROM_DIRECTORY
    caf = inst.loc[[o for o in inst.index if o.startswith("Caisse")][0]]
    assert caf["contact_status"] == TO_CONTACT and caf["phone"] == ""
