#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_build
short_description: Build a P2PDMA kernel package once per content hash of source, patches and config
version_added: "0.1.0"
description:
  - Gets the kernel source (Debian's C(linux-source-X.Y) package, a tarball or a git ref), applies a quilt-style
    patch series after a dry run of each patch, and caches the patched tree by content hash.
  - Starts the config from a base (C(defconfig), C(tinyconfig), a file, the running config or C(localmodconfig)),
    writes the fragments over it, runs C(make olddefconfig) and verifies every fragment symbol. A dropped symbol
    fails the task with the symbol, the value asked, the value received and the unmet Kconfig dependency.
  - Builds C(make bindeb-pkg) with ccache into C(output_root/<hash>), with C(LOCALVERSION=-p2p<hash>), where the
    hash covers the source, the patches and the resolved config, and writes C(provenance.json) beside the packages.
  - A build whose provenance file and packages exist is not rebuilt, and the task reports no change.
author:
  - p2pdma.storage maintainers (@p2pdma)
options:
  version:
    description: Kernel series C(X.Y); picks Debian's C(linux-source-X.Y) when I(source=debian).
    type: str
    required: true
  source:
    description: Where the source comes from.
    type: str
    choices: [debian, tarball, git]
    default: debian
  tarball:
    description: Source tarball with one top directory, for I(source=tarball).
    type: path
  git_url:
    description: Repository to clone (depth 1), for I(source=git).
    type: str
  git_ref:
    description: Branch or tag of I(git_url).
    type: str
  series_dir:
    description: Directory with a quilt C(series) file and the patches it lists. Omit for no patches.
    type: path
  config_base:
    description:
      - C(running) copies C(/boot/config-$(uname -r)) (or I(config_file)); C(localmodconfig) then keeps only the
        modules listed in I(lsmod_file); C(file) starts from I(config_file).
    type: str
    choices: [defconfig, tinyconfig, file, running, localmodconfig]
    default: running
  config_file:
    description: The base .config for I(config_base=file), or instead of the running one.
    type: path
  lsmod_file:
    description: C(lsmod) output of the target node for I(config_base=localmodconfig); default this host's.
    type: path
  fragments:
    description: Config fragments, applied in order (a later one wins), all verified after C(olddefconfig).
    type: list
    elements: path
    default: []
  output_root:
    description: Where the C(<hash>/) build directories with packages go; default C(kernel-pkg) in the cache root.
    type: path
  tree_cache:
    description: Where patched source trees are cached by content hash; default C(kernel-tree) in the cache root.
    type: path
  ccache_dir:
    description: ccache directory, empty to build without ccache; default C(ccache) in the cache root.
    type: path
  jobs:
    description: C(make -j).
    type: int
    default: 2
  log_file:
    description:
      - Where the output of every command of this build goes as it runs, each stage starting with a C(==> stage)
        line; follow it with C(tail -f). Default C(build.log) in I(output_root).
    type: path
attributes:
  check_mode:
    support: full
    description: Computes the same actions and returns them without running any.
    details: Configures and verifies in a scratch directory to tell whether a build is needed; builds nothing.
extends_documentation_fragment:
  - p2pdma.storage.attributes
  - p2pdma.storage.attributes.changes
notes:
  - Needs the kernel build dependencies (C(build-essential bc bison flex libelf-dev libssl-dev dwarves ccache
    fakeroot debhelper rsync)); the C(p2pdma.storage.kernel_build) role installs them.
  - The patched tree is written to I(tree_cache) even in check mode, as a cache.
  - The cache root on the build host is C($P2PCTL_CACHE), else C($XDG_CACHE_HOME/p2pctl), else C(~/.cache/p2pctl),
    of the user the module runs as. Debian's C(linux-source-X.Y) is fetched into C(linux-source) there when it is
    not installed.
seealso:
  - module: p2pdma.storage.p2p_facts
"""

EXAMPLES = r"""
- name: Build the lab kernel from Debian's 6.1 source
  p2pdma.storage.kernel_build:
    version: "6.1"
    series_dir: "{{ playbook_dir }}/../kernel-src/patches/6.1"
    config_base: tinyconfig
    fragments:
      - "{{ playbook_dir }}/../kernel-src/configs/p2pdma.config"
      - "{{ playbook_dir }}/../kernel-src/configs/lab.config"
  register: kernel

- name: Build from a stable tag with the running config as base
  p2pdma.storage.kernel_build:
    version: "6.12"
    source: git
    git_url: https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git
    git_ref: v6.12.10
    series_dir: /srv/kernel-src/patches/6.12
    fragments: [/srv/kernel-src/configs/p2pdma.config]
"""

RETURN = r"""
release:
  description: The kernel release of the package (C(uname -r) once booted); in check mode, the release to build.
  returned: always
  type: str
  sample: 6.1.192-p2p3f2a9c1d0b7e
output_dir:
  description: Directory holding the packages, C(provenance.json) and the object tree.
  returned: always
  type: str
packages:
  description: Package file names in I(output_dir).
  returned: always
  type: list
  elements: str
  sample: [linux-image-6.1.192-p2p3f2a9c1d0b7e_3f2a9c1d0b7e-1_amd64.deb]
provenance:
  description: Source, source id, release, patches with sha256, config base, fragments, config sha256, compiler.
  returned: always
  type: dict
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
seconds:
  description: Time of each step (configure, build).
  returned: always
  type: dict
log_file:
  description: The build log (the output of every command of this run).
  returned: always
  type: str
  sample: /root/.cache/p2pctl/kernel-pkg/build.log
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import cache_root  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import kbuild, source_tree  # noqa: E402


def run(module: AnsibleModule) -> dict:
    params = module.params
    output_root = params["output_root"] or str(cache_root() / "kernel-pkg")
    log = kbuild.BuildLog(params["log_file"] or output_root + "/build.log")
    with log.stage("prepare the source tree", "%s source of %s" % (params["source"], params["version"])):
        tarball = params["tarball"]
        if params["source"] == "debian":
            tarball = source_tree.debian_source_tarball(params["version"])
        tree = source_tree.prepare_tree(
            params["series_dir"],
            tarball=tarball if params["source"] != "git" else None,
            git_url=params["git_url"] if params["source"] == "git" else None,
            git_ref=params["git_ref"],
            cache_dir=params["tree_cache"],
        )
    base = kbuild.ConfigBase(params["config_base"], params["config_file"], params["lsmod_file"])
    result = kbuild.build_packages(
        tree,
        base,
        params["fragments"],
        output_root=output_root,
        jobs=params["jobs"],
        ccache_dir=str(cache_root() / "ccache") if params["ccache_dir"] is None else params["ccache_dir"] or None,
        dry_run=module.check_mode,
        log=log,
    )
    would_build = module.check_mode and not result.packages
    changed = result.changed or would_build
    actions = []
    if changed:
        actions.append("build %s packages in %s" % (kbuild.DEFAULT_TARGET, result.output_dir))
    return {
        "changed": changed,
        "release": result.release,
        "output_dir": result.output_dir,
        "packages": result.packages,
        "provenance": result.provenance,
        "actions": actions,
        "seconds": {step: round(value, 1) for step, value in result.times.items()},
        "log_file": log.path,
        "diff": {
            "before": {"build": result.output_dir if not changed else None},
            "after": {"build": result.output_dir},
        },
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            version=dict(type="str", required=True),
            source=dict(type="str", choices=["debian", "tarball", "git"], default="debian"),
            tarball=dict(type="path"),
            git_url=dict(type="str"),
            git_ref=dict(type="str"),
            series_dir=dict(type="path"),
            config_base=dict(type="str", choices=list(kbuild.CONFIG_BASES), default="running"),
            config_file=dict(type="path"),
            lsmod_file=dict(type="path"),
            fragments=dict(type="list", elements="path", default=[]),
            output_root=dict(type="path"),
            tree_cache=dict(type="path"),
            ccache_dir=dict(type="path"),
            jobs=dict(type="int", default=2),
            log_file=dict(type="path"),
        ),
        required_if=[
            ("source", "tarball", ["tarball"]),
            ("source", "git", ["git_url", "git_ref"]),
            ("config_base", "file", ["config_file"]),
        ],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except P2PError as err:
        module.fail_json(msg=str(err))


if __name__ == "__main__":
    main()
