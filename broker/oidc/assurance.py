"""Which authentication context class (acr) a request demands, and whether a login met it.

A login carries the level it actually reached, not the best its method can give: a SITHS
reserve card gives LoA 2 although SITHS can give LoA 3. A request names the levels it
accepts by an `acr` claim request with `value`/`values` (essential or not), by
`acr_values`, or, naming none, through the client's registered `default_acr_values`
(OIDC Registration 2: request values override the defaults). All three are treated as a
requirement, compared by exact string: a login or SSO session at another level never
answers the request. An RP that accepts several levels lists them all. OIDC Core calls
`acr_values` voluntary, but silently answering a request for LoA 3 with LoA 2 is the
defect this rule exists to stop (Swedish profile: do not proceed when unmet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .claims import parse_claims_request


@dataclass(frozen=True)
class AcrRequirement:
    """The acr values a login must reach one of; none: any login will do."""

    values: tuple[str, ...] = ()

    def met_by(self, acr: str | None) -> bool:
        return not self.values or acr in self.values

    def reachable_with(self, offered: Iterable[str]) -> bool:
        """Whether a method offering these levels could meet it."""
        return not self.values or not set(self.values).isdisjoint(offered)


def acr_requirement(params: Mapping[str, str], default_acr_values: Sequence[str]) -> AcrRequirement:
    """The requirement of a validated authorization request (`claims` already parsed
    once at the endpoint, so it is well-formed here)."""
    requested = parse_claims_request(params.get("claims"))
    for member in ("id_token", "userinfo"):
        spec = requested.get(member, {}).get("acr")
        if isinstance(spec, dict):
            values = spec.get("values") if isinstance(spec.get("values"), list) else [spec.get("value")]
            wanted = tuple(v for v in values if isinstance(v, str))
            if wanted:
                return AcrRequirement(wanted)
    listed = tuple(params.get("acr_values", "").split())
    if listed:
        return AcrRequirement(listed)
    return AcrRequirement(tuple(default_acr_values))
