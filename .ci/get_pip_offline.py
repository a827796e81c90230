"""Stand-in for the get-pip script that ansible-test downloads from ci-files.testing.ansible.com.

ansible-test runs it inside each fresh sanity virtualenv as
``python get_pip_<version>.py [pip options] pip==<version> [--no-setuptools] [--no-wheel]``.
Offline it only reads ``~/.ansible/test/cache/get_pip_<version>.py``; .ci/ansible-checks copies this file
there. It seeds pip from the interpreter's own ensurepip wheel, then installs the requested pip from the
package registry (PyPI or the configured mirror), so no other host is needed.
"""

import subprocess
import sys

# get-pip.py options that only make sense for get-pip itself; pip install would reject them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# In a child process: ensurepip clears PIP_* and points PIP_CONFIG_FILE at /dev/null in its own process, and the
# install below needs the machine's pip configuration (index, certificates).
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *pip_args]))
