"""Release notes: Markdown rendered to HTML that is safe to show (nh3-cleaned)."""

from __future__ import annotations

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "p", "br", "h1", "h2", "h3", "h4", "ul", "ol", "li", "strong", "em", "code",
    "pre", "blockquote", "a", "hr", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


def render_changelog(text: str) -> SafeString:
    """Markdown to HTML with scripts, handlers and unsafe links removed."""
    html = markdown.markdown(text or "", extensions=["tables", "fenced_code"])
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - cleaned by nh3 just above
