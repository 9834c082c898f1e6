"""Routes: message templates — the kinds, stored versions, publishing and previews (staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.notifications.domain.channels import Channel
from services.notifications.message_kinds import LANGUAGES, ChannelTemplate
from services.notifications.providers.base import Rendered
from services.notifications.rendering import RenderError
from services.notifications.routes.deps import PREFIX, Admin, Ctx, Staff
from services.notifications.templates import builtin_view, render_problem, sample_context
from shared.problems import Unprocessable, problem_responses_doc

router = APIRouter(prefix=PREFIX, tags=["notifications: templates"])


class KindSummary(BaseModel):
    kind: str
    event: str | None
    urgent: bool
    mandatory: bool
    inbox: bool
    push: list[str]
    active_version: int


class ActiveVersion(BaseModel):
    """The template version to make active (0: the built-in one from the message kind file)."""

    version: int = Field(ge=0, le=2**31 - 1)


class TemplateBody(BaseModel):
    title: str = Field("", max_length=200)
    body: str = Field("", max_length=4000)
    fields: dict[str, str] = Field(default_factory=dict, max_length=20)
    page: str = Field("", max_length=500)


class PreviewRequest(BaseModel):
    language: str = Field("zh-CN", pattern=r"^(zh-CN|en)$")
    channel: Channel
    context: dict[str, Any] | None = Field(None, description="defaults to the kind's sample")
    draft: TemplateBody | None = Field(None, description="render this instead of the active one")


class TemplateText(BaseModel):
    title: str
    body: str
    fields: dict[str, str]
    page: str


class TemplateVersion(BaseModel):
    """A stored template version: language -> channel -> template."""

    kind: str
    version: int
    templates: dict[str, dict[str, TemplateText]]
    active: bool
    note: str
    created_by: str
    created_at: datetime


class KindDetail(BaseModel):
    kind: str
    active_version: int
    builtin: dict[str, dict[str, TemplateText]]
    sample: dict[str, Any]
    versions: list[TemplateVersion]


class ActiveKindVersion(BaseModel):
    kind: str
    active_version: int


class PublishRequest(BaseModel):
    templates: dict[str, dict[str, TemplateBody]] = Field(
        description="language -> channel -> template; the rest stays built in"
    )
    note: str = Field(min_length=2, max_length=200)


@router.get("/templates", summary="Every message kind and its active template version")
async def list_kinds(ctx: Ctx, staff: Staff) -> list[KindSummary]:
    result = []
    for kind in sorted(ctx.message_kinds.kinds.values(), key=lambda k: k.kind):
        version, _ = await ctx.templates.active_version(kind.kind)
        result.append(
            KindSummary(
                kind=kind.kind,
                event=kind.event or None,
                urgent=kind.urgent,
                mandatory=kind.mandatory,
                inbox=kind.inbox,
                push=[c.value for c in kind.push],
                active_version=version,
            )
        )
    return result


@router.get(
    "/templates/{kind}",
    summary="A kind's built-in templates and stored versions",
    responses=problem_responses_doc(404),
)
async def get_kind(ctx: Ctx, staff: Staff, kind: str) -> KindDetail:
    message_kind = ctx.templates.kind(kind)
    active, _ = await ctx.templates.active_version(kind)
    return KindDetail.model_validate(
        {
            "kind": kind,
            "active_version": active,
            "builtin": builtin_view(message_kind),
            "sample": dict(message_kind.sample),
            "versions": await ctx.templates.versions(kind),
        }
    )


@router.post(
    "/templates/{kind}/versions",
    status_code=201,
    summary="Publish a new template version (admin); it becomes the active one",
    description="Every template is rendered with the kind's sample first: 422 if one fails.",
    responses=problem_responses_doc(404, 422),
)
async def publish(ctx: Ctx, admin: Admin, kind: str, body: PublishRequest) -> TemplateVersion:
    raw = {
        language: {channel: t.model_dump() for channel, t in channels.items()}
        for language, channels in body.templates.items()
    }
    doc = await ctx.templates.publish(kind, raw, by=admin.subject, note=body.note)
    return TemplateVersion.model_validate(doc)


@router.put(
    "/templates/{kind}/active",
    summary="Make a version active (0 = the built-in templates): a rollback",
    responses=problem_responses_doc(404),
)
async def activate(ctx: Ctx, admin: Admin, kind: str, body: ActiveVersion) -> ActiveKindVersion:
    await ctx.templates.activate(kind, body.version)
    return ActiveKindVersion(kind=kind, active_version=body.version)


@router.post(
    "/templates/{kind}/preview",
    summary="Render a kind (or a draft) for one channel and language (admin)",
    description=(
        "Rendered in a separate process with a time limit and an output limit: a template "
        "that takes too long is a 422 template_too_slow, one whose output is too large a "
        "422 template_output_too_large."
    ),
    responses=problem_responses_doc(404, 422),
)
async def preview(ctx: Ctx, admin: Admin, kind: str, body: PreviewRequest) -> Rendered:
    message_kind = ctx.templates.kind(kind)
    if body.channel not in message_kind.channels():
        raise Unprocessable("channel_not_used", f"{kind} is not sent on {body.channel.value}")
    if body.language not in LANGUAGES:
        raise Unprocessable("template_language_unknown", f"unsupported language {body.language}")
    context = {
        **sample_context(message_kind, body.language, ctx.settings.hospital_timezone),
        **(body.context or {}),
    }
    if body.draft is not None:
        template = ChannelTemplate.from_mapping(body.draft.model_dump())
    else:
        _, overrides = await ctx.templates.active_version(kind)
        active = overrides.get(body.language, {}).get(body.channel)
        template = active or message_kind.builtin(body.language, body.channel)
    try:
        return await ctx.previews.render(template, context)
    except RenderError as exc:
        raise render_problem(exc) from exc
