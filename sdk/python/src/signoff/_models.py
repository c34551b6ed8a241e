"""What the server answers, as typed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from ._errors import Cancelled, Denied, Expired

Status = Literal["pending", "approved", "denied", "expired", "cancelled", "executed", "failed"]
"""Where a request stands. `executed` and `failed` are approvals whose outcome was reported."""

PENDING = "pending"
APPROVED_STATES = frozenset({"approved", "executed", "failed"})


@dataclass(frozen=True)
class Reviewer:
    """A person as the organisation's sign-in described them."""

    issuer: str
    subject: str
    email: Optional[str] = None
    name: Optional[str] = None
    groups: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.subject

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reviewer:
        return cls(
            issuer=str(data.get("issuer", "")),
            subject=str(data.get("subject", "")),
            email=data.get("email"),
            name=data.get("name"),
            groups=tuple(data.get("groups") or ()),
        )


@dataclass(frozen=True)
class Decision:
    """One reviewer's verdict (`approve` or `deny`) and comment."""

    reviewer: Reviewer
    verdict: str
    comment: str
    channel: str
    decided_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        return cls(
            reviewer=Reviewer.from_json(data.get("reviewer") or {}),
            verdict=str(data.get("verdict", "")),
            comment=str(data.get("comment") or ""),
            channel=str(data.get("channel", "")),
            decided_at=str(data.get("decided_at", "")),
        )


@dataclass(frozen=True)
class Policy:
    """The policy that matched the request, as frozen on it when it was created."""

    name: str
    version: int
    effect: str
    id: Optional[str] = None
    approvals_required: int = 0
    approver_groups: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    deny_reason: Optional[str] = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        return cls(
            name=str(data.get("name", "")),
            version=int(data.get("version") or 0),
            effect=str(data.get("effect", "")),
            id=data.get("id"),
            approvals_required=int(data.get("approvals_required") or 0),
            approver_groups=tuple(data.get("approver_groups") or ()),
            why=tuple(data.get("why") or ()),
            deny_reason=data.get("deny_reason"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Request:
    """A request as the server last showed it. `raw` holds every field it sent."""

    id: str
    status: str
    action: str
    resource: str
    title: str
    reason: str
    labels: dict[str, str]
    payload: Any
    diff: Optional[str]
    context: Any
    digest: str
    policy: Policy
    approvals: int
    decisions: tuple[Decision, ...]
    created_at: str
    expires_at: str
    decided_at: Optional[str] = None
    started_at: Optional[str] = None
    result: Optional[dict[str, Any]] = None
    receipt: Optional[str] = None
    on_behalf_of: Optional[str] = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        return cls(
            id=str(data["id"]),
            status=str(data["status"]),
            action=str(data.get("action", "")),
            resource=str(data.get("resource", "")),
            title=str(data.get("title", "")),
            reason=str(data.get("reason", "")),
            labels=dict(data.get("labels") or {}),
            payload=data.get("payload"),
            diff=data.get("diff"),
            context=data.get("context"),
            digest=str(data.get("digest", "")),
            policy=Policy.from_json(data.get("policy") or {}),
            approvals=int(data.get("approvals") or 0),
            decisions=tuple(Decision.from_json(d) for d in data.get("decisions") or ()),
            created_at=str(data.get("created_at", "")),
            expires_at=str(data.get("expires_at", "")),
            decided_at=data.get("decided_at"),
            started_at=data.get("started_at"),
            result=data.get("result"),
            receipt=data.get("receipt"),
            on_behalf_of=data.get("on_behalf_of"),
            raw=dict(data),
        )

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    @property
    def approved(self) -> bool:
        """Approved (including approvals whose outcome was already reported)."""
        return self.status in APPROVED_STATES

    def approval(self) -> Approval:
        """The approval, or the outcome as an exception: `Denied`, `Expired` or `Cancelled`.

        Raises `ValueError` while the request is still pending.
        """
        if self.approved:
            return Approval.from_request(self)
        if self.status == "denied":
            raise Denied(self)
        if self.status == "expired":
            raise Expired(self)
        if self.status == "cancelled":
            raise Cancelled(self)
        raise ValueError(f"request {self.id} is still {self.status}")


@dataclass(frozen=True)
class Approval:
    """An approved request: who approved it, under which policy, and the signed receipt if any."""

    id: str
    approvers: tuple[Reviewer, ...]
    policy: Policy
    receipt: Optional[str]
    comments: tuple[str, ...]
    request: Request

    @property
    def by_policy(self) -> bool:
        """Approved at once by an `allow` policy (or a grant), with no reviewer's vote on it."""
        return not self.approvers

    @classmethod
    def from_request(cls, request: Request) -> Approval:
        approving = [d for d in request.decisions if d.verdict == "approve"]
        return cls(
            id=request.id,
            approvers=tuple(d.reviewer for d in approving),
            policy=request.policy,
            receipt=request.receipt,
            comments=tuple(d.comment for d in approving if d.comment),
            request=request,
        )
