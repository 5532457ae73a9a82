"""Without Qt's X11 libraries the app prints the exact Debian packages and exits 3.

The parser is checked on real output recorded on a Debian 12 machine missing two libraries
(`ldd` of PySide6 6.11's libqxcb.so; the site-packages path rewritten) beside Qt's own abort
message from the same machine, which names the wrong package. The end-to-end check builds a
real shared object that links a library which is then removed, and starts the app with Qt's
xcb platform on it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ui.platform_check import message, missing_libraries, packages_for, will_use_xcb

DATA = Path(__file__).with_name("data")
ROOT = Path(__file__).resolve().parents[2]


def test_recorded_ldd_output_names_the_packages():
    out = (DATA / "ldd_libqxcb_missing.txt").read_text()
    missing = missing_libraries(out)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert packages_for(missing) == (["libxcb-icccm4", "libxcb-keysyms1"], [])
    text = message(missing)
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in text
    # Qt's own message blames a package that is installed on that machine
    qt = (DATA / "qt_xcb_abort_stderr.txt").read_text()
    assert "libxcb-cursor0" in qt and "libxcb-cursor.so.0 => /" in out


def test_only_the_x11_platform_is_checked():
    assert will_use_xcb({"DISPLAY": ":0"}) == sys.platform.startswith("linux")
    assert not will_use_xcb({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"})
    assert not will_use_xcb({})
    assert will_use_xcb({"QT_QPA_PLATFORM": "xcb"}) == sys.platform.startswith("linux")


def test_app_start_prints_packages_and_exits_3(tmp_path: Path):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed to build the test's shared object"
    # A soname no machine has, mapped (in the child) to a package name: the real ldd reports
    # it missing whatever is installed here; the recorded output above covers the real names.
    soname = "libfp-absent-xcb-keysyms.so.1"
    lib = tmp_path / soname
    (tmp_path / "k.c").write_text("int fp_keysyms_stub(void) { return 1; }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), f"-Wl,-soname,{soname}",
                    str(tmp_path / "k.c")], check=True)  # fmt: skip
    (tmp_path / "p.c").write_text("int fp_plugin(void) { return 0; }\n")
    plugin = tmp_path / "libqxcb.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(plugin), str(tmp_path / "p.c"),
                    "-Wl,--no-as-needed", str(lib)], check=True)  # fmt: skip
    lib.unlink()  # now the plugin's dependency is missing, as on a machine without it
    code = (
        "import sys, pathlib, ui.platform_check as pc\n"
        f"pc.xcb_plugin_files = lambda: [pathlib.Path({str(plugin)!r})]\n"
        f"pc.DEBIAN_PACKAGES[{soname!r}] = 'libfp-absent-keysyms1'\n"
        "from ui.app import run\n"
        "sys.exit(run())\n"
    )
    env = {"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":99",
           "FORGEPLANNER_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=120)  # fmt: skip
    assert out.returncode == 3, out.stderr
    assert f"missing libraries: {soname}" in out.stderr
    assert "sudo apt-get install libfp-absent-keysyms1" in out.stderr
