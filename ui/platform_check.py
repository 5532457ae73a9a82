"""Before Qt starts on Linux: are the X11 libraries of Qt's xcb plugin installed?

Without them Qt aborts the process with its own message, which names the wrong package (it
always suggests libxcb-cursor0) and cannot be caught: the plugin is loaded with dlopen and
Qt calls abort(). So the app asks the dynamic linker first (`ldd` on the plugin and on the Qt
library it links) and, when libraries are missing, prints the exact Debian/Ubuntu packages to
install and exits with status 3 instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# shared library -> Debian/Ubuntu package that ships it (checked with `dpkg -S` on Debian 12;
# the names are the same on Ubuntu 22.04 and later).
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libGLdispatch.so.0": "libglvnd0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libpng16.so.16": "libpng16-16",
}
EXIT_MISSING_LIBS = 3


def missing_libraries(ldd_output: str) -> list[str]:
    """Sonames that `ldd` reports as "not found", in first-seen order, once each."""
    out: list[str] = []
    for line in ldd_output.splitlines():
        name, sep, rest = line.strip().partition(" => ")
        if sep and rest.strip().startswith("not found") and name not in out:
            out.append(name)
    return out


def packages_for(sonames: list[str]) -> tuple[list[str], list[str]]:
    """(Debian packages to install, sonames with no known package)."""
    packages: list[str] = []
    unknown: list[str] = []
    for so in sonames:
        pkg = DEBIAN_PACKAGES.get(so)
        if pkg is None:
            unknown.append(so)
        elif pkg not in packages:
            packages.append(pkg)
    return packages, unknown


def message(sonames: list[str]) -> str:
    packages, unknown = packages_for(sonames)
    lines = [
        "forgeplanner: error: Qt's X11 platform plugin cannot load; missing libraries: "
        + ", ".join(sonames)
        + "."
    ]
    if packages:
        lines.append("Install them (Debian/Ubuntu):")
        lines.append("    sudo apt-get install " + " ".join(packages))
    if unknown:
        lines.append("No known package for: " + ", ".join(unknown) + " (search your distribution)")
    lines.append(
        "Or render a view without a display: forgeplanner gui --view fit --screenshot f.png"
    )
    return "\n".join(lines)


def xcb_plugin_files() -> list[Path]:
    """The xcb plugin of the installed PySide6 and the Qt library it links."""
    import PySide6  # the package only: loads no Qt library

    qt = Path(PySide6.__file__).parent / "Qt"
    files = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]
    return [f for f in files if f.exists()]


def will_use_xcb(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":", 1)[0].split(";", 1)[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def check_x11_libraries() -> str | None:
    """The message to print (None when the plugin's libraries all resolve, or when Qt will not
    use the X11 plugin, or when `ldd` is not there to ask)."""
    if not will_use_xcb():
        return None
    missing: list[str] = []
    for f in xcb_plugin_files():
        try:
            out = subprocess.run(
                ["ldd", str(f)], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None  # no ldd (musl, a minimal image): Qt reports for itself
        for so in missing_libraries(out):
            if so not in missing:
                missing.append(so)
    return message(missing) if missing else None


__all__ = [
    "DEBIAN_PACKAGES",
    "EXIT_MISSING_LIBS",
    "check_x11_libraries",
    "message",
    "missing_libraries",
    "packages_for",
    "will_use_xcb",
]
