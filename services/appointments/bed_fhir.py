"""A bed as a FHIR R4(B) ``Location`` (read-only), built with ``fhir.resources.R4B`` models
as ``services/referrals/fhir.py`` builds its resources (R4B's Location is R4-compatible).

* ``mode`` ``instance``, ``physicalType`` ``bd`` (bed), ``name`` the room and bed code;
* ``status``: ``suspended`` for a blocked bed, else ``active``;
* ``operationalStatus`` (HL7 v2 table 0116): free ``U`` (unoccupied), reserved ``U`` too
  (not yet occupied; CareLoop's own status is in the ``bed-status`` extension), occupied
  ``O``, cleaning ``H`` (housekeeping), blocked ``C`` (closed);
* ``type``: the bed kind (CareLoop code system); ``identifier``: ward and bed codes;
* ``managingOrganization``: ``Organization/<org_id>``; ``partOf`` the ward's display name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.reference import Reference

CARELOOP = "https://careloop.example/fhir"
BED_STATUS_EXTENSION = f"{CARELOOP}/StructureDefinition/bed-status"
BED_KIND_SYSTEM = f"{CARELOOP}/CodeSystem/bed-kind"
BED_SYSTEM = f"{CARELOOP}/NamingSystem/bed"
BED_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0116"
PHYSICAL_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/location-physical-type"
OPERATIONAL = {
    "free": ("U", "Unoccupied"),
    "reserved": ("U", "Unoccupied"),
    "occupied": ("O", "Occupied"),
    "cleaning": ("H", "Housekeeping"),
    "blocked": ("C", "Closed"),
}


def location_of(bed: Mapping[str, Any]) -> dict[str, Any]:
    """The FHIR Location of a stored bed, as JSON."""
    status = str(bed["status"])
    code, display = OPERATIONAL[status]
    location = Location(
        id=str(bed["_id"]),
        meta=Meta(versionId=str(bed.get("version", 0)), lastUpdated=bed["updated_at"]),
        extension=[Extension(url=BED_STATUS_EXTENSION, valueCode=status)],
        identifier=[Identifier(system=BED_SYSTEM, value=f"{bed['ward_id']}.{bed['code']}")],
        status="suspended" if status == "blocked" else "active",
        operationalStatus=Coding(system=BED_STATUS_SYSTEM, code=code, display=display),
        name=f"{bed['ward_name']} {bed['room']}-{bed['code']}",
        mode="instance",
        type=[CodeableConcept(coding=[Coding(system=BED_KIND_SYSTEM, code=str(bed["kind"]))])],
        physicalType=CodeableConcept(
            coding=[Coding(system=PHYSICAL_TYPE_SYSTEM, code="bd", display="Bed")]
        ),
        managingOrganization=Reference(reference=f"Organization/{bed['org_id']}"),
        partOf=Reference(display=str(bed["ward_name"])),
    )
    return location.model_dump(mode="json")
