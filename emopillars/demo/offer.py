"""What the demo page may open: the models and runs its owner named at start-up, nothing else.

The page offers them as choices, but a choice on the page is no guard: Gradio's API takes any string
for any input. So every handler passes the name it was sent through `Offer.model` / `Offer.run` before
touching the disk or the Hub; a name not on the owner's list is refused by string comparison alone
(no `stat`, no path resolution, no Hub look-up), unless the owner started the page with
`--allow-paths`. Pure Python (no gradio).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from emopillars.errors import EmopillarsError

LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class Offer:
    """The owner's choices: model folders or Hub ids, synth run folders, and whether free paths are allowed."""

    models: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()
    allow_paths: bool = False

    def model(self, name: str | None) -> str:
        """`name` if the page may load it as a model; else an EmopillarsError saying why, nothing read."""
        return self._check(name, self.models, "model", "--model DIR")

    def run(self, name: str | None) -> str:
        """`name` if the page may read it as a synth run; else an EmopillarsError saying why, nothing read."""
        return self._check(name, self.runs, "run", "--data DIR")

    def _check(self, name: str | None, offered: tuple[str, ...], kind: str, flag: str) -> str:
        name = (name or "").strip()
        if not name:
            if offered or self.allow_paths:
                raise EmopillarsError(f"choose a {kind}")
            raise EmopillarsError(f"no {kind} on this page: its owner can add one (emopillars demo {flag})")
        if name in offered or self.allow_paths:
            return name
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise EmopillarsError(
            f"{kind} {shown!r} is not offered by this page (offered: {', '.join(offered) or 'none'}); "
            f"its owner chooses them at start-up (emopillars demo {flag})"
        )


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the page on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to any interface
        return False


def free_paths_notice(offer: Offer, host: str) -> str | None:
    """The one line the demo logs at start when `--allow-paths` is on (a warning off loopback), else None."""
    if not offer.allow_paths:
        return None
    if is_loopback(host):
        return f"--allow-paths: the page loads any folder or Hub id typed into it (bound to {host} only)"
    return (
        f"--allow-paths with --host {host}: anyone who can reach this page can make this server read any folder "
        "it can see and download any Hub model; drop one of the two unless you mean it"
    )
