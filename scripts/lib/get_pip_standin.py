"""Stand-in for ansible-test's downloaded get-pip.py (the download host is unreachable here).

ansible-test runs it as ``python get_pip_X.py [pip install options] pip==X setuptools wheel``.
It bootstraps pip from the interpreter's bundled wheel (ensurepip), then installs what was asked
from the configured package index.  ensurepip sets PIP_CONFIG_FILE=/dev/null for itself; drop it
afterwards so /etc/pip.conf (certificates, index) applies to the real install.
"""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
os.environ.pop("PIP_CONFIG_FILE", None)
# get-pip.py's own flags mean "do not add setuptools/wheel", which plain pip does not do anyway
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
