# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kernel decides for a P2PDMA provider and its clients, and why.

A userspace reimplementation of drivers/pci/p2pdma.c (identical from 6.1 to mainline):

``calc_map_type_and_dist(provider, client)``
    Walk up from the provider (``a``); before looking for ``a`` in the client's chain,
    check ``a``'s ACS. The first ``a`` that is also in the client's chain is the common
    upstream bridge; distance = steps from the provider + steps from the client. Then
    check ACS on the client's chain below that bridge. No redirect -> BUS_ADDR. A
    redirect, or no common bridge (distance = both chains' lengths) -> through the host
    bridge: THRU_HOST_BRIDGE when cpu_supports_p2pdma() or host_bridge_whitelist(), else
    NOT_SUPPORTED.

``pci_p2pdma_distance_many(provider, clients)``
    -1 when there are no clients, a client is not a PCI device, or any client is
    NOT_SUPPORTED; else the sum of the distances.

The whitelist and the ACS parameters come from :class:`KernelRules` for the release
being judged. Whether a provider *published* its memory does not enter the distance,
as in the kernel; :func:`publication` reports it separately.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import UnreadableError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Node, PciFunction
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import parse_bdf
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.rules import (
    ACS_PARAM_FIX,
    KernelRules,
    cpu_supports_p2pdma,
    rules_for,
    runs_on_x86,
)


class MapType:
    BUS_ADDR = "bus_addr"
    THRU_HOST_BRIDGE = "thru_host_bridge"
    NOT_SUPPORTED = "not_supported"


# The kernel's seq_buf for the ACS device list is 128 bytes (calc_map_type_and_dist()).
_ACS_LIST_BUF = 128


class PairVerdict:
    """The kernel's decision for one provider/client pair.

    The decision (map type, distance, common upstream bridge, ACS devices) is computed
    eagerly; the explanation (reason, fix, path, kernel log lines, kernel parameters)
    on first use, so that all-pairs runs stay cheap.
    """

    __slots__ = (
        "provider",
        "client",
        "map_type",
        "distance",
        "common_upstream",
        "acs_redirect",
        "acs_unknown",
        "client_name",
        "hops",
        "_engine",
        "_texts",
    )

    def __init__(
        self,
        provider: str,
        client: Optional[str],
        map_type: str,
        distance: int,
        common_upstream: Optional[str],
        acs_redirect: List[str],
        reason: Optional[str] = None,
        fix: Optional[str] = None,
        path: Optional[List[str]] = None,
        acs_unknown: Optional[List[str]] = None,
        client_name: Optional[str] = None,
        hops: Optional[int] = None,
        kernel_log: Optional[List[str]] = None,
        kernel_params: Optional[List[str]] = None,
        engine: Optional[_Engine] = None,
    ) -> None:
        self.provider = provider
        self.client = client
        self.map_type = map_type
        self.distance = distance
        self.common_upstream = common_upstream
        self.acs_redirect = acs_redirect
        self.acs_unknown = acs_unknown or []
        self.client_name = client_name
        # The kernel's dist even when the pair is not supported (distance is then -1).
        self.hops = distance if hops is None else hops
        self._engine = engine
        self._texts: Optional[_Texts] = None
        if engine is None:
            self._texts = _Texts(reason or "", fix, path or [], kernel_log or [], kernel_params or [])

    def _explained(self) -> _Texts:
        if self._texts is None:
            assert self._engine is not None
            self._texts = self._engine.explain(self)
        return self._texts

    @property
    def reason(self) -> str:
        return self._explained().reason

    @property
    def fix(self) -> Optional[str]:
        return self._explained().fix

    @property
    def path(self) -> List[str]:
        return self._explained().path

    @property
    def kernel_log(self) -> List[str]:
        """The lines the kernel logs for this pair when asked verbosely (nvmet does)."""
        return self._explained().kernel_log

    @property
    def kernel_params(self) -> List[str]:
        """Boot parameters this path needs (preferred first): those that would clear its ACS redirect, or,
        for a direct path, those already on the command line that keep its ACS redirect clear."""
        return self._explained().kernel_params

    @property
    def supported(self) -> bool:
        return self.map_type != MapType.NOT_SUPPORTED

    @property
    def certain(self) -> bool:
        """False when a device on the checked path has ACS that could not be read."""
        return not self.acs_unknown

    def __repr__(self) -> str:
        return "PairVerdict(%s -> %s: %s, %d)" % (self.provider, self.client, self.map_type, self.distance)

    def to_dict(self) -> dict:
        return {
            "client": self.client,
            "client_name": self.client_name,
            "map_type": self.map_type,
            "distance": self.distance,
            "common_upstream": self.common_upstream,
            "acs_redirect": list(self.acs_redirect),
            "acs_unknown": list(self.acs_unknown),
            "certain": self.certain,
            "reason": self.reason,
            "fix": self.fix,
            "path": list(self.path),
            "kernel_params": list(self.kernel_params),
            "kernel_log": list(self.kernel_log),
        }


class _Texts:
    __slots__ = ("reason", "fix", "path", "kernel_log", "kernel_params")

    def __init__(
        self, reason: str, fix: Optional[str], path: List[str], kernel_log: List[str], kernel_params: List[str]
    ) -> None:
        self.reason = reason
        self.fix = fix
        self.path = path
        self.kernel_log = kernel_log
        self.kernel_params = kernel_params


class Verdict:
    """pci_p2pdma_distance_many() for one provider and its clients.

    ``supported`` and ``distance`` are computed at once; the per-client
    :class:`PairVerdict` objects are built when ``clients`` is first read.
    """

    __slots__ = ("provider", "supported", "distance", "_clients", "_pending", "_engine", "_reason")

    def __init__(
        self,
        provider: str,
        clients: Optional[List[PairVerdict]] = None,
        reason: Optional[str] = None,
        pending: Optional[List[Union[_Decision, PairVerdict]]] = None,
        engine: Optional[_Engine] = None,
    ) -> None:
        self.provider = provider
        self._clients = clients
        self._pending = pending
        self._engine = engine
        self._reason = reason
        entries: Sequence[Union[_Decision, PairVerdict]] = clients if clients is not None else (pending or [])
        total = 0
        supported = bool(entries)
        for entry in entries:
            if isinstance(entry, tuple):
                map_type, distance = entry[1], entry[2]
            else:
                map_type, distance = entry.map_type, entry.distance
            if map_type == MapType.NOT_SUPPORTED:
                supported = False
                break
            total += distance
        self.supported = supported
        self.distance = total if supported else -1

    @property
    def clients(self) -> List[PairVerdict]:
        if self._clients is None:
            engine = self._engine
            assert engine is not None
            self._clients = [
                entry if isinstance(entry, PairVerdict) else engine.verdict(self.provider, entry)
                for entry in self._pending or []
            ]
            self._pending = None
        return self._clients

    @property
    def reason(self) -> str:
        if self._reason is None:
            clients = self.clients
            if clients:
                self._reason = _summary(clients, self.supported)
            else:
                self._reason = "no clients: pci_p2pdma_distance_many() returns -1"
        return self._reason

    @property
    def certain(self) -> bool:
        return all(c.certain for c in self.clients)

    def __repr__(self) -> str:
        return "Verdict(%s, distance %d)" % (self.provider, self.distance)

    def to_dict(self) -> dict:
        return {
            "provider": self.provider,
            "supported": self.supported,
            "distance": self.distance,
            "certain": self.certain,
            "reason": self.reason,
            "clients": [c.to_dict() for c in self.clients],
        }


def _summary(clients: List[PairVerdict], supported: bool) -> str:
    if supported:
        return "every client is supported: the distance is the sum of the clients' distances"
    bad = [c.client_name or c.client or "?" for c in clients if not c.supported]
    return "not supported for %s: pci_p2pdma_distance_many() returns -1" % ", ".join(bad)


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------
# (client, map_type, distance, common upstream, ACS-redirecting devices, ACS-unknown devices, kernel dist)
_Decision = Tuple[str, str, int, Optional[str], Tuple[str, ...], Tuple[str, ...], int]
_NONE: Tuple[str, ...] = ()


class _ProviderWalk:
    """A provider's side of the walk, prepared once for all its clients."""

    __slots__ = (
        "provider",
        "chain",
        "index",
        "top",
        "length",
        "redirect_pos",
        "unknown_pos",
        "host_bridge",
        "host_ok",
        "decisions",
    )

    def __init__(self, node: Node, provider: str) -> None:
        self.provider = provider
        self.chain = node.chains[provider]
        self.index = node.chain_pos[provider]
        self.top = self.chain[-1]
        self.length = len(self.chain)
        self.redirect_pos = node.redirect_pos[provider]
        self.unknown_pos = node.unknown_pos[provider]
        self.host_bridge = node.functions[provider].host_bridge
        self.host_ok: Dict[str, bool] = {}  # client's host bridge -> host-bridge path allowed
        self.decisions: Dict[str, _Decision] = {}  # client -> decision, computed once


class _Engine:
    """Pair verdicts for one node and one kernel release, cached per pair."""

    def __init__(self, node: Node, rules: KernelRules) -> None:
        self.node = node
        self.rules = rules
        self.cpu_ok = cpu_supports_p2pdma(node.kernel)
        self.host_ok: Dict[Tuple[str, str], bool] = {}
        self.walks: Dict[str, _ProviderWalk] = {}

    # -- the kernel's two questions ---------------------------------------------------------
    def host_bridge_whitelisted(self, host_a: str, host_b: str) -> bool:
        """host_bridge_whitelist(): same host bridge -> listed; different -> both listed, none REQ_SAME."""
        key = (host_a, host_b)
        cached = self.host_ok.get(key)
        if cached is not None:
            return cached
        if host_a == host_b:
            result = self._listed(host_a, same_host_bridge=True)
        else:
            result = self._listed(host_a, same_host_bridge=False) and self._listed(host_b, same_host_bridge=False)
        self.host_ok[key] = result
        return result

    def _listed(self, host: str, same_host_bridge: bool) -> bool:
        root = self.node.host_bridge_device(host)
        if root is None or root.vendor is None or root.device is None:
            return False
        entry = self.rules.lookup(root.vendor, root.device)
        if entry is None:
            return False
        return not (entry.req_same_host_bridge and not same_host_bridge)

    def pair(self, provider: str, client: str, client_name: Optional[str] = None) -> PairVerdict:
        decision = self.decide(self._provider(provider), client)
        verdict = self.verdict(provider, decision)
        if client_name:
            verdict.client_name = client_name
        return verdict

    def verdict(self, provider: str, decision: _Decision) -> PairVerdict:
        client, map_type, distance, ancestor, redirect, unknown, hops = decision
        return PairVerdict(
            provider,
            client,
            map_type,
            distance,
            ancestor,
            list(redirect),
            acs_unknown=list(unknown),
            hops=hops,
            engine=self,
        )

    def _provider(self, provider: str) -> _ProviderWalk:
        walk = self.walks.get(provider)
        if walk is None:
            walk = _ProviderWalk(self.node, provider)
            self.walks[provider] = walk
        return walk

    def decide(self, walk: _ProviderWalk, client: str) -> _Decision:
        """calc_map_type_and_dist(): the decision only; explain() adds the words.

        The kernel walks up from the provider and looks for each bridge in the client's
        chain. Both chains end at a device on a root bus and merge once they meet, so the
        first common bridge is also the first one met walking up from the client, and two
        chains with different top devices never meet.
        """
        decision = walk.decisions.get(client)
        if decision is not None:
            return decision
        node = self.node
        c_chain = node.chains[client]
        if c_chain[-1] != walk.top:
            # The provider's walk ends without meeting the client: acs_redirects stays false.
            c_host = node.host_bridge_of[client]
            supported = walk.host_ok.get(c_host)
            if supported is None:
                supported = self.cpu_ok or self.host_bridge_whitelisted(walk.host_bridge, c_host)
                walk.host_ok[c_host] = supported
            hops = walk.length + len(c_chain)
            if supported:
                decision = (client, MapType.THRU_HOST_BRIDGE, hops, None, _NONE, _NONE, hops)
            else:
                decision = (client, MapType.NOT_SUPPORTED, -1, None, _NONE, _NONE, hops)
            walk.decisions[client] = decision
            return decision
        p_index = walk.index
        client_index = 0
        ancestor_index = None
        for member in c_chain:
            ancestor_index = p_index.get(member)
            if ancestor_index is not None:
                break
            client_index += 1
        assert ancestor_index is not None
        hops = ancestor_index + client_index
        p_chain = walk.chain
        redirect = [p_chain[i] for i in walk.redirect_pos if i <= ancestor_index]
        c_redirect = node.redirect_pos[client]
        if c_redirect:
            redirect += [c_chain[i] for i in c_redirect if i < client_index]
        unknown: List[str] = []
        c_unknown = node.unknown_pos[client]
        if walk.unknown_pos or c_unknown:
            unknown = [p_chain[i] for i in walk.unknown_pos if i <= ancestor_index]
            unknown += [c_chain[i] for i in c_unknown if i < client_index]
        ancestor = p_chain[ancestor_index]
        if not redirect:
            decision = (client, MapType.BUS_ADDR, hops, ancestor, _NONE, tuple(unknown), hops)
        else:
            functions = node.functions
            supported = self.cpu_ok or self.host_bridge_whitelisted(
                functions[walk.provider].host_bridge, functions[client].host_bridge
            )
            decision = (
                client,
                MapType.THRU_HOST_BRIDGE if supported else MapType.NOT_SUPPORTED,
                hops if supported else -1,
                ancestor,
                tuple(redirect),
                tuple(unknown),
                hops,
            )
        walk.decisions[client] = decision
        return decision

    # -- explanations ------------------------------------------------------------------------
    def explain(self, verdict: PairVerdict) -> _Texts:
        texts = self._explain(verdict)
        if self.rules.coverage_note:
            texts.reason += "; " + self.rules.coverage_note
        return texts

    def _explain(self, verdict: PairVerdict) -> _Texts:
        node = self.node
        provider = verdict.provider
        client = verdict.client
        assert client is not None
        p_chain = node.chains[provider]
        c_chain = node.chains[client]
        ancestor = verdict.common_upstream
        unknown = verdict.acs_unknown
        if verdict.map_type == MapType.BUS_ADDR:
            assert ancestor is not None
            path = list(p_chain[: p_chain.index(ancestor) + 1]) + list(reversed(c_chain[: c_chain.index(ancestor)]))
            if provider == client:
                reason = "provider and client are the same function: distance 0, bus addresses"
            else:
                reason = "%s and %s share upstream bridge %s%s; no ACS redirect on the path: the transfer turns " \
                    "there without reaching the host bridge (distance %d)" % (
                        provider, client, ancestor, self._describe(ancestor), verdict.hops)
            fix = None
            if unknown:
                reason += "; ACS of %s could not be read, so this assumes no redirect there" % ", ".join(unknown)
                fix = "run as root so that ACS of %s can be read (non-root sees 64 bytes of config space)" % (
                    ", ".join(unknown))
            kept = self._acs_kept_off(path)
            params: List[str] = []
            if kept:
                # A role that composes the command line from these verdicts must not drop the
                # parameter that makes this path work once the node runs with it.
                params = list(self.rules.acs_kernel_params(tuple(kept)))
                reason += "; ACS redirect is off at %s because pci=disable_acs_redir on the command line names %s:" \
                    " keep that parameter" % (", ".join(kept), "it" if len(kept) == 1 else "them")
            return _Texts(reason, fix, path, [], params)
        return self._explain_host_bridge(verdict, p_chain, c_chain)

    def _explain_host_bridge(self, verdict: PairVerdict, p_chain: Sequence[str], c_chain: Sequence[str]) -> _Texts:
        node = self.node
        provider = verdict.provider
        client = verdict.client or ""
        ancestor = verdict.common_upstream
        redirect = verdict.acs_redirect
        unknown = verdict.acs_unknown
        supported = verdict.supported
        p_fn = node.functions[provider]
        c_fn = node.functions[client]
        acs_redirects = bool(redirect)
        log: List[str] = []
        if acs_redirects:
            log.append("%s: ACS redirect is set between the client and provider (%s)" % (client, provider))
            log.append(
                "%s: to disable ACS redirect for this path, add the kernel parameter: pci=disable_acs_redir=%s"
                % (client, _kernel_acs_list(redirect))
            )
        if ancestor is None:
            path = list(p_chain) + [p_fn.host_bridge]
            if c_fn.host_bridge != p_fn.host_bridge:
                path.append(c_fn.host_bridge)
            path += list(reversed(c_chain))
        else:
            path = list(p_chain[: p_chain.index(ancestor) + 1]) + list(reversed(c_chain[: c_chain.index(ancestor)]))
        if not supported and acs_redirects:
            # __host_bridge_whitelist() warns (warn = acs_redirects) for an unlisted device.
            for host in _hosts_checked(p_fn.host_bridge, c_fn.host_bridge, self):
                root = node.host_bridge_device(host)
                if root is not None and self.rules.lookup(root.vendor or 0, root.device or 0) is None:
                    log.append("%s: Host bridge not in P2PDMA whitelist: %s" % (root.bdf, root.ident))
        if not supported:
            log.append(
                "%s: cannot be used for peer-to-peer DMA as the client and provider (%s) do not share an upstream "
                "bridge or whitelisted host bridge" % (client, provider)
            )
        why_host = self._host_reason(p_fn, c_fn, supported)
        if ancestor is None:
            route = "%s and %s share no upstream bridge (%s)" % (provider, client, self._where(p_fn, c_fn))
        else:
            route = "ACS redirect is on at %s, so the transfer between %s and %s goes up through the host " \
                "bridge instead of turning at %s%s" % (
                    " and ".join(self._acs_text(b) for b in redirect),
                    provider,
                    client,
                    ancestor,
                    self._describe(ancestor),
                )
        reason = "%s; %s" % (route, why_host)
        if unknown:
            reason += "; ACS of %s could not be read" % ", ".join(unknown)

        fixes: List[str] = []
        params: List[str] = []
        if acs_redirects:
            params = list(self.rules.acs_kernel_params(tuple(redirect)))
            merged = self._merge_existing(redirect)
            fixes.append(
                "boot with %s%s (quote it in GRUB: ';' separates the devices) so that %s and %s meet at %s "
                "without the host bridge%s%s" % (
                    merged,
                    (" or, on this kernel, %s" % params[1]) if len(params) > 1 else "",
                    provider,
                    client,
                    ancestor,
                    self._iommu_note(),
                    self._acs_param_notes(redirect),
                )
            )
            params[0] = merged
        elif supported:
            fixes.append("for bus addresses instead of the host bridge, %s" % self._placement_fix(p_fn, c_fn))
        else:
            fixes.append("%s: %s" % (self._placement_fix(p_fn, c_fn), self._whitelist_fix(p_fn, c_fn)))
        if unknown:
            fixes.append("run as root so that ACS of %s can be read" % ", ".join(unknown))
        return _Texts(reason, "; ".join(fixes) if fixes else None, path, log, params)

    # -- texts -------------------------------------------------------------------------------
    def _describe(self, bdf: str) -> str:
        fn = self.node.functions.get(bdf)
        if fn is None or not fn.port_type:
            return ""
        names = {
            "switch_upstream": "switch upstream port",
            "switch_downstream": "switch downstream port",
            "root_port": "root port",
            "endpoint": "endpoint",
        }
        return " (%s)" % names.get(fn.port_type, fn.port_type.replace("_", " "))

    def _acs_text(self, bdf: str) -> str:
        return "%s%s (ACS Control %s)" % (bdf, self._describe(bdf), acs_text(self.node.functions[bdf]))

    def _where(self, p_fn: PciFunction, c_fn: PciFunction) -> str:
        if p_fn.host_bridge != c_fn.host_bridge:
            return "they sit below different host bridges, %s and %s" % (p_fn.host_bridge, c_fn.host_bridge)

        def place(fn: PciFunction) -> str:
            top = self.node.chains[fn.bdf][-1]
            return "%s sits on the root bus" % fn.bdf if top == fn.bdf else "%s is below %s" % (fn.bdf, top)

        return "their paths meet only at host bridge %s: %s, %s" % (p_fn.host_bridge, place(p_fn), place(c_fn))

    def _host_reason(self, p_fn: PciFunction, c_fn: PciFunction, supported: bool) -> str:
        kernel = self.node.kernel
        release = self.rules.release
        if self.cpu_ok:
            return "the CPU (%s family 0x%x) passes cpu_supports_p2pdma(), so the kernel maps it through the host " \
                "bridge" % (kernel.cpu_vendor, kernel.cpu_family or 0)
        cpu = "the CPU rule does not apply (%s)" % self._cpu_text()
        hosts = _hosts_checked(p_fn.host_bridge, c_fn.host_bridge, self)
        parts = []
        for host in hosts:
            parts.append(self._host_text(host, same=p_fn.host_bridge == c_fn.host_bridge))
        verdict = "allowed" if supported else "not allowed"
        return "%s; host bridge check in kernel %s: %s -> %s" % (cpu, release, "; ".join(parts), verdict)

    def _cpu_text(self) -> str:
        kernel = self.node.kernel
        if kernel.arch and not runs_on_x86(kernel):
            return "arch %s: only x86 AMD CPUs of family 0x17 (Zen) or later qualify" % kernel.arch
        if kernel.cpu_vendor is None:
            return "CPU vendor unknown: /proc/cpuinfo was not read"
        if kernel.cpu_vendor == "AuthenticAMD":
            if kernel.cpu_family is None:
                return "AMD CPU of unknown family: /proc/cpuinfo has no 'cpu family'"
            return "AMD family 0x%x is older than Zen (0x17)" % kernel.cpu_family
        if kernel.cpu_vendor == "HygonGenuine":
            return "Hygon CPUs are not in cpu_supports_p2pdma(), which accepts only X86_VENDOR_AMD"
        return "%s: only AMD family 0x17 (Zen) or later qualifies" % kernel.cpu_vendor

    def _host_text(self, host: str, same: bool) -> str:
        root = self.node.host_bridge_device(host)
        first = self.node.root_bus_first.get(host)
        if root is None:
            if first is None:
                return "%s has no device on its root bus" % host
            fn = self.node.functions[first]
            return "%s: the first device on its root bus, %s (%s), is neither devfn 00.0 nor a root port, so " \
                "there is nothing to look up" % (host, first, fn.ident)
        entry = self.rules.lookup(root.vendor or 0, root.device or 0)
        if entry is None:
            return "%s: %s %s is not in the P2PDMA whitelist" % (host, root.bdf, root.ident)
        if entry.req_same_host_bridge and not same:
            return "%s: %s %s (%s) is whitelisted only within one host bridge (REQ_SAME_HOST_BRIDGE)" % (
                host,
                root.bdf,
                root.ident,
                entry.what,
            )
        return "%s: %s %s (%s) is whitelisted" % (host, root.bdf, root.ident, entry.what)

    def _whitelist_fix(self, p_fn: PciFunction, c_fn: PciFunction) -> str:
        notes = []
        for host in _hosts_checked(p_fn.host_bridge, c_fn.host_bridge, self):
            root = self.node.host_bridge_device(host)
            if root is None:
                continue
            if self.rules.lookup(root.vendor or 0, root.device or 0) is not None:
                continue
            later = self.rules.first_whitelisted(root.vendor or 0, root.device or 0)
            text = "host bridge %s (%s) is not whitelisted in kernel %s" % (root.ident, root.bdf, self.rules.release)
            if later is not None:
                text += " (first whitelisted in %s: use that kernel or newer)" % later.first_text()
            notes.append(text)
        if notes:
            return "; ".join(notes) + ", and the CPU is not AMD Zen, so the path through the host bridge is refused"
        return "this host-bridge path is not whitelisted and the CPU is not AMD Zen, so the kernel refuses it"

    def _placement_fix(self, p_fn: PciFunction, c_fn: PciFunction) -> str:
        node = self.node
        switch = node.switch_above(p_fn.bdf)
        if switch is not None:
            return "move %s behind switch %s (where %s is) so that both share an upstream bridge" % (
                c_fn.bdf,
                switch,
                p_fn.bdf,
            )
        switch = node.switch_above(c_fn.bdf)
        if switch is not None:
            return "move %s behind switch %s (where %s is) so that both share an upstream bridge" % (
                p_fn.bdf,
                switch,
                c_fn.bdf,
            )
        return "put %s and %s under one PCIe switch (or one root port) so that both share an upstream bridge" % (
            p_fn.bdf,
            c_fn.bdf,
        )

    def _merge_existing(self, redirect: List[str]) -> str:
        """The disable_acs_redir value to boot with: the kernel keeps only the last one given."""
        existing = self.node.kernel.pci_options().get("disable_acs_redir", "")
        devices = [d for d in existing.split(";") if d] if existing else []
        for bdf in redirect:
            if bdf not in devices:
                devices.append(bdf)
        return "pci=disable_acs_redir=%s" % ";".join(devices)

    def _acs_param_notes(self, redirect: List[str]) -> str:
        notes = []
        listed = [bdf for bdf in redirect if self._already_listed(bdf)]
        if listed:
            notes.append(
                "%s %s already named by pci=disable_acs_redir on the running kernel's command line yet still "
                "redirect%s: the parameter acts once, at enumeration, so ACS was set again afterwards (setpci, "
                "a driver), or a device quirk refused it" % (
                    ", ".join(listed),
                    "is" if len(listed) == 1 else "are",
                    "s" if len(listed) == 1 else "",
                )
            )
        if self.rules.acs_param_firmware_only is None:
            notes.append(
                "kernel %s hides its sublevel: if it predates %s, the ACS parameters only put back the "
                "firmware's ACS setting and will not clear redirect the firmware set"
                % (self.rules.release, ACS_PARAM_FIX)
            )
        elif self.rules.acs_param_firmware_only:
            if self.node.kernel.iommu_in_use:
                cause = "with the IOMMU on the kernel set these bits, so the parameter works, but any the " \
                    "firmware set stay"
            else:
                cause = "without an IOMMU the firmware set these bits, so the parameter will not clear them: " \
                    "update the kernel, or turn ACS off for these ports in the firmware setup"
            notes.append(
                "on kernel %s the ACS parameters only put back the firmware's ACS setting (fixed by %s); %s" % (
                    self.rules.release,
                    ACS_PARAM_FIX,
                    cause,
                )
            )
        return "".join("; note: %s" % note for note in notes)

    def _acs_kept_off(self, path: Sequence[str]) -> List[str]:
        """Devices on a checked path with ACS whose redirect the running command line clears."""
        kept = []
        for bdf in path:
            acs = self.node.functions[bdf].acs
            if acs is not None and acs.present and self._already_listed(bdf):
                kept.append(bdf)
        return kept

    def _already_listed(self, bdf: str) -> bool:
        entries = self.node.kernel.pci_options().get("disable_acs_redir", "")
        return any(_param_matches(self.node, bdf, entry) for entry in entries.split(";") if entry)

    def _iommu_note(self) -> str:
        if self.node.kernel.iommu_in_use:
            return " (the IOMMU is on: the kernel enables ACS redirect at boot, the parameter clears it again, " \
                "and the devices below then share an IOMMU group)"
        return ""


def _param_matches(node: Node, bdf: str, entry: str) -> bool:
    """pci_dev_str_match(): ``[dom:]bus:dev.fn[/dev.fn]*`` or ``pci:vendor:device[:subvendor:subdevice]``."""
    fn = node.functions.get(bdf)
    if fn is None:
        return False
    entry = entry.strip()
    if entry.startswith("pci:"):
        try:
            ids = [int(part, 16) for part in entry[4:].split(":")]
        except ValueError:
            return False
        if len(ids) not in (2, 4):
            return False
        wanted = ids + [0, 0] if len(ids) == 2 else ids
        actual = [fn.vendor, fn.device, fn.subsystem_vendor, fn.subsystem_device]
        return all(not want or want == have for want, have in zip(wanted, actual))
    # A path names the device by the devfns below a top device: walk up as the kernel does.
    *hops, top = reversed(entry.split("/"))
    current: Optional[PciFunction] = fn
    for hop in hops:
        if current is None or not _devfn_matches(current, hop):
            return False
        upstream = current.upstream_bdf
        current = node.functions.get(upstream) if upstream else None
    if current is None:
        return False
    try:
        return parse_bdf(top) == current.bdf
    except P2PError:
        return False


def _devfn_matches(fn: PciFunction, text: str) -> bool:
    dev, _, func = text.partition(".")
    try:
        return fn.devfn == (int(dev, 16) << 3 | int(func, 16))
    except ValueError:
        return False


def _hosts_checked(host_a: str, host_b: str, engine: _Engine) -> List[str]:
    """The host bridges host_bridge_whitelist() looks at (it stops at the first failure)."""
    if host_a == host_b:
        return [host_a]
    if not engine._listed(host_a, same_host_bridge=False):
        return [host_a]
    return [host_a, host_b]


def _kernel_acs_list(devices: Iterable[str]) -> str:
    """The list as the kernel prints it: 128-byte seq_buf, so a long list is cut off."""
    text = "".join("%s;" % d for d in devices)
    if len(text) < _ACS_LIST_BUF:
        return text[:-1]
    return text[: _ACS_LIST_BUF - 1]


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------
def engine_for(node: Node, rules: Optional[KernelRules] = None) -> _Engine:
    """The (cached) engine for a node and a release; verdicts are cached inside it."""
    if rules is None:
        rules = rules_for(node)
    cache = node.__dict__.setdefault("_verdict_engines", {})
    key = (rules.release, rules.version)
    engine = cache.get(key)
    if engine is None:
        engine = _Engine(node, rules)
        cache[key] = engine
    return engine


def _client(node: Node, name: str) -> Optional[str]:
    """The PCI function find_parent_pci_dev() finds for a client; None when it is not a PCI device."""
    return name if name in node.functions else node.pci_parent_of(name)


def pair_verdict(
    node: Node, provider_bdf: str, client_bdf: str, rules: Optional[KernelRules] = None
) -> PairVerdict:
    """calc_map_type_and_dist() for one pair; names (nvme0, nvme0n1, mlx5_0, eth0) are accepted."""
    engine = engine_for(node, rules)
    provider = provider_bdf if provider_bdf in node.functions else node.resolve(provider_bdf)
    client = _client(node, client_bdf)
    if client is None:
        return _not_pci(node, provider, client_bdf)
    name = None if client_bdf == client else client_bdf
    return engine.pair(provider, client, name)


def distance_many(
    node: Node, provider: str, clients: Sequence[str], rules: Optional[KernelRules] = None
) -> Verdict:
    """pci_p2pdma_distance_many(): per-client verdicts and the total (-1 if any is unsupported)."""
    engine = engine_for(node, rules)
    provider_bdf = provider if provider in node.functions else node.resolve(provider)
    functions = node.functions
    walk = engine._provider(provider_bdf)
    decisions = walk.decisions
    decide = engine.decide
    pending: List[Union[_Decision, PairVerdict]] = []
    append = pending.append
    for name in clients:
        if name in functions:
            decision = decisions.get(name)
            append(decision if decision is not None else decide(walk, name))
            continue
        client = _client(node, name)
        if client is None:
            append(_not_pci(node, provider_bdf, name))
        else:
            append(engine.pair(provider_bdf, client, name))
    return Verdict(provider_bdf, pending=pending, engine=engine)


def _not_pci(node: Node, provider: str, name: str) -> PairVerdict:
    try:
        node.resolve(name)
        detail = "%s is not a PCI device" % name
        fix = "use a PCI client"
    except P2PError as err:
        detail = err.message
        fix = err.fix or "use a PCI client"
    return PairVerdict(
        provider=provider,
        client=None,
        map_type=MapType.NOT_SUPPORTED,
        distance=-1,
        common_upstream=None,
        acs_redirect=[],
        reason="%s; pci_p2pdma_distance_many() finds no PCI parent and returns -1 ('cannot be used for "
        "peer-to-peer DMA as it is not a PCI device')" % detail,
        fix=fix,
        path=[],
        client_name=name,
        hops=-1,
        kernel_log=["%s: cannot be used for peer-to-peer DMA as it is not a PCI device" % name],
    )


def acs_text(fn: PciFunction) -> str:
    """A function's ACS Control as lspci names the bits, or why it is not known."""
    if fn.acs is None:
        return "unknown (config space not readable)"
    if not fn.acs.present:
        return "no ACS capability"
    return "|".join(fn.acs.control_flags) or "0 (all off)"


# The pseudo-CMB quirk (kernel-src/patches: nvme-pci uses BAR 4 as a CMB) covers BAR 4 in 16 MiB units.
PSEUDO_CMB_BAR = 4
PSEUDO_CMB_UNIT = 16 << 20
PSEUDO_CMB_BUILTIN_IDS = ("11f8:f117", "1db1:0002")


def _bar_memory(node: Node, fn: PciFunction, index: int) -> Optional[int]:
    """Length of memory BAR ``index`` (0 when assigned but of unknown size), None when it has none.

    The ``resource`` file gives the length; a snapshot may hold only ``config``, whose BAR
    register shows that memory is assigned there, not how much.
    """
    try:
        resource = node.root.read_text(fn.sysfs_path + "/resource")
        config = None if resource else node.root.read_bytes(fn.sysfs_path + "/config", 0x40)
    except UnreadableError:
        return None
    if resource:
        lines = resource.splitlines()
        try:
            start, end, _flags = (int(part, 16) for part in lines[index].split())
        except (IndexError, ValueError):
            return None
        return end - start + 1 if end else None
    offset = 0x10 + 4 * index
    if config is None or len(config) < offset + 8:
        return None
    low = int.from_bytes(config[offset : offset + 4], "little")
    high = int.from_bytes(config[offset + 4 : offset + 8], "little") if low & 0x6 == 0x4 else 0
    if low & 0x1 or not (low & ~0xF or high):
        return None
    return 0


def pseudo_cmb(node: Node, fn: PciFunction) -> Optional[Tuple[str, str]]:
    """(why, fix) for an NVMe drive with memory on BAR 4 and no CMB, which the pseudo-CMB quirk can publish."""
    controllers = node.nvme_for_bdf(fn.bdf)
    if not controllers or any(c.cmb is not None and c.cmb.cmbsz for c in controllers):
        return None
    length = _bar_memory(node, fn, PSEUDO_CMB_BAR)
    if length is None or 0 < length < PSEUDO_CMB_UNIT:
        return None
    ident = fn.ident
    size = " (%d MiB)" % (length >> 20) if length else ""
    listed = node.kernel.cmdline_params().get("nvme.pseudo_cmb", "").split(",")
    why = "%s advertises no CMB (CMBSZ 0) but has memory on BAR %d%s, which the project's pseudo-CMB quirk " \
        "publishes" % (", ".join(c.name for c in controllers), PSEUDO_CMB_BAR, size)
    if ident in listed or ident in PSEUDO_CMB_BUILTIN_IDS:
        why += "; %s is already named for the quirk, so the running kernel lacks the pseudo-CMB patch" % ident
        fix = "install a kernel built by the p2pdma.storage.kernel_build role (its series carries the nvme-pci " \
            "pseudo-CMB patch) with p2pdma.storage.kernel_install"
        return why, fix
    fix = "boot the project's P2PDMA kernel (kernel_build carries the pseudo-CMB patch) with nvme.pseudo_cmb=%s: " \
        "set kernel_install_pseudo_cmb_ids: ['%s'] for the p2pdma.storage.kernel_install role" % (ident, ident)
    return why, fix


def publication(node: Node, provider: str) -> dict:
    """Whether a provider offers p2pmem to others (pci_has_p2pmem()), kept apart from distance.

    ``why`` says why a CMB is not p2pmem, or not published, and ``fix`` what to do: the one
    place that explains it, for the checks and for ``p2pctl distance``.
    """
    bdf = provider if provider in node.functions else node.resolve(provider)
    fn = node.functions[bdf]
    controllers = node.nvme_for_bdf(bdf)
    names = " (%s)" % ", ".join(c.name for c in controllers) if controllers else ""
    cmb_reason = next(
        (r for r in (c.cmb.why_not_published(c.cmb_bar) for c in controllers if c.cmb is not None) if r), None
    )
    state = {"provider": bdf, "has_p2pmem": fn.p2pmem is not None, "published": False, "size": 0, "available": 0}
    if fn.p2pmem is None:
        pseudo = pseudo_cmb(node, fn)
        if pseudo is not None:
            why, fix = "%s%s has no p2pmem: %s" % (bdf, names, pseudo[0]), pseudo[1]
        elif controllers and all(c.cmb is None for c in controllers):
            why = "%s%s has no CMB (no cmbsz attribute), so nvme-pci registers no p2pmem" % (bdf, names)
            fix = "use a provider with a Controller Memory Buffer that sets WDS and RDS (check 'nvme id-ctrl')"
        elif cmb_reason:
            why = "%s%s has no p2pmem: %s" % (bdf, names, cmb_reason)
            fix = "use a controller whose CMB sets WDS and RDS and whose size and BAR are 2 MiB aligned"
        else:
            why = "%s%s has no p2pmem directory: no driver registered peer-to-peer memory on it" % (bdf, names)
            fix = "check that the kernel has CONFIG_PCI_P2PDMA=y and that the device's driver is bound"
        return dict(state, why=why, fix=fix)
    state.update(published=fn.p2pmem.published, size=fn.p2pmem.size, available=fn.p2pmem.available)
    if fn.p2pmem.published:
        return dict(state, why=None, fix=None)
    why = "%s%s registered p2pmem but did not publish it: pci_p2pmem_find_many() and nvmet's p2pmem=1 skip it" % (
        bdf, names)
    if cmb_reason:
        why += "; %s" % cmb_reason
    return dict(state, why=why, fix="use a controller whose CMBSZ sets both WDS and RDS")


def require_provider(node: Node, name: str) -> str:
    """The BDF of ``name`` if it has p2pmem; else a P2PError naming the providers there are."""
    bdf = node.resolve(name)
    state = publication(node, bdf)
    if state["has_p2pmem"]:
        return bdf
    providers = [
        "%s%s" % (fn.bdf, " (%s)" % ", ".join(c.name for c in node.nvme_for_bdf(fn.bdf)) if node.nvme_for_bdf(
            fn.bdf) else "")
        for fn in node.providers()
    ]
    fn = node.functions[bdf]
    listing = "name one of the providers here: %s" % ", ".join(providers) if providers else \
        "this node has no p2pmem provider"
    label = name if name == bdf else "%s (%s)" % (name, bdf)
    if not node.nvme_for_bdf(bdf):
        raise P2PError("%s is not a p2pmem provider: %s has no p2pmem" % (label, _kind(fn)), fix=listing)
    raise P2PError("%s is not a p2pmem provider: %s" % (label, state["why"]), fix="%s; %s" % (listing, state["fix"]))


def _kind(fn: PciFunction) -> str:
    if fn.is_vf:
        return "a VF of %s" % fn.physfn
    if fn.is_bridge:
        return "a %s" % (fn.port_type or "bridge").replace("_", " ")
    return "the device"


__all__ = [
    "MapType",
    "PairVerdict",
    "Verdict",
    "acs_text",
    "distance_many",
    "engine_for",
    "pair_verdict",
    "pseudo_cmb",
    "publication",
    "require_provider",
]
