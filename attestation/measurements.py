"""What a node measured: the values an attestation pins, and the one definition of "changed".

The JSON form is the ``measurements`` object of an ``attestation`` log entry (docs/entries.md):
every field is always present (``null`` when the report does not carry it), hex is lowercase
without ``0x``. ``diff_measurements`` is shared by the collector (alerts) and the monitor, so
both agree on what counts as a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# ``quote_sha256`` identifies the evidence, not the node's state: it changes with every nonce.
_NOT_A_MEASUREMENT = frozenset({"quote_sha256"})


@dataclass(frozen=True, slots=True)
class GpuMeasurement:
    """One GPU as its signed evidence describes it (index in the report's evidence list)."""

    index: int
    arch: str | None = None
    driver_version: str | None = None
    vbios_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "arch": self.arch,
            "driver_version": self.driver_version,
            "vbios_version": self.vbios_version,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> GpuMeasurement:
        return cls(
            index=int(obj["index"]),
            arch=obj.get("arch"),
            driver_version=obj.get("driver_version"),
            vbios_version=obj.get("vbios_version"),
        )


@dataclass(frozen=True, slots=True)
class Measurements:
    """The measurements of one attestation (TDX registers, dstack identity, TCB, GPUs)."""

    mrtd: str | None = None
    rtmr0: str | None = None
    rtmr1: str | None = None
    rtmr2: str | None = None
    rtmr3: str | None = None
    mr_config_id: str | None = None
    mr_seam: str | None = None
    compose_hash: str | None = None
    app_id: str | None = None
    instance_id: str | None = None
    os_image_hash: str | None = None
    key_provider: str | None = None
    tcb_status: str | None = None
    advisory_ids: tuple[str, ...] = ()
    quote_sha256: str | None = None
    gpus: tuple[GpuMeasurement, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "advisory_ids":
                value = list(value)
            elif f.name == "gpus":
                value = [g.to_json() for g in value]
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Measurements:
        """Inverse of :meth:`to_json`; unknown keys are ignored, missing ones are ``None``."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in obj:
                continue
            value = obj[f.name]
            if f.name == "advisory_ids":
                value = tuple(str(v) for v in (value or ()))
            elif f.name == "gpus":
                value = tuple(GpuMeasurement.from_json(g) for g in (value or ()))
            kwargs[f.name] = value
        return cls(**kwargs)


# The field names of the JSON form, for readers of untrusted entries (the explorer): the
# single-valued fields (hex or text), and the fields of each GPU besides its index.
SCALAR_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Measurements) if f.name not in ("advisory_ids", "gpus")
)
GPU_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(GpuMeasurement) if f.name != "index")


@dataclass(frozen=True, slots=True)
class Change:
    """One changed value; ``field`` is a path (``rtmr3``, ``gpus[2].driver_version``)."""

    field: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


def diff_measurements(old: Measurements, new: Measurements) -> list[Change]:
    """The changes from ``old`` to ``new``; empty means "the measurements did not change".

    Every field counts except ``quote_sha256`` (it differs per poll). Advisory IDs compare as
    sets. GPUs compare by index; a GPU that appears or disappears is one change ``gpus[i]``.
    """
    changes: list[Change] = []
    for f in fields(Measurements):
        name = f.name
        if name in _NOT_A_MEASUREMENT or name == "gpus":
            continue
        a, b = getattr(old, name), getattr(new, name)
        if name == "advisory_ids":
            if sorted(set(a)) != sorted(set(b)):
                changes.append(Change(name, sorted(set(a)), sorted(set(b))))
            continue
        if _norm(a) != _norm(b):
            changes.append(Change(name, a, b))
    old_gpus = {g.index: g for g in old.gpus}
    new_gpus = {g.index: g for g in new.gpus}
    for index in sorted(old_gpus.keys() | new_gpus.keys()):
        g_old, g_new = old_gpus.get(index), new_gpus.get(index)
        if g_old is None or g_new is None:
            changes.append(
                Change(
                    f"gpus[{index}]",
                    g_old.to_json() if g_old else None,
                    g_new.to_json() if g_new else None,
                )
            )
            continue
        for attr in ("arch", "driver_version", "vbios_version"):
            a, b = getattr(g_old, attr), getattr(g_new, attr)
            if _norm(a) != _norm(b):
                changes.append(Change(f"gpus[{index}].{attr}", a, b))
    return changes


def _norm(value: Any) -> Any:
    # Hex and versions compare case-insensitively: a node that switches from upper- to
    # lower-case hex has not changed what it runs.
    return value.lower() if isinstance(value, str) else value
