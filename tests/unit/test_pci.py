import struct

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import ConfigSpace, LinkInfo, parse_bdf


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("0000:01:00.0", "0000:01:00.0"),
        ("01:00.0", "0000:01:00.0"),
        ("1:0.1", "0000:01:00.1"),
        ("0001:3A:1F.7", "0001:3a:1f.7"),
        (" 00:1f.2 ", "0000:00:1f.2"),
        ("10000:e1:00.0", "10000:e1:00.0"),
    ],
)
def test_parse_bdf_canonical_form(text, canonical):
    assert parse_bdf(text) == canonical


@pytest.mark.parametrize("text", ["", "nvme0", "01:00", "0000:01:00.8", "00:20.0", "0000:01:00.0.0", "zz:00.0"])
def test_parse_bdf_rejects_with_the_text_and_the_expected_form(text):
    with pytest.raises(P2PError) as err:
        parse_bdf(text)
    assert repr(text) in str(err.value)
    assert "domain:bus:device.function" in str(err.value)


def _config(size=4096, status=0x0010, header=0x00, caps=(), ext=()):
    """A config space with capabilities [(offset, id, next, body)] and extended ones [(offset, header, body)]."""
    data = bytearray(4096)
    struct.pack_into("<HHHH", data, 0, 0x1B36, 0x000C, 0x0006, status)
    data[0x0B] = 0x06
    data[0x0A] = 0x04
    data[0x0E] = header
    if caps:
        data[0x34] = caps[0][0]
    for offset, cap_id, nxt, body in caps:
        data[offset] = cap_id
        data[offset + 1] = nxt
        data[offset + 2 : offset + 2 + len(body)] = body
    for offset, header_dword, body in ext:
        struct.pack_into("<I", data, offset, header_dword)
        data[offset + 4 : offset + 4 + len(body)] = body
    return bytes(data[:size])


def _pcie_body(port_type, lnkcap=0x00000043, lnksta=0x0043):
    body = bytearray(0x40)
    struct.pack_into("<H", body, 0, 0x2 | (port_type << 4))
    struct.pack_into("<I", body, 0x0A, lnkcap)  # +0x0C from the capability start
    struct.pack_into("<H", body, 0x10, lnksta)  # +0x12
    return bytes(body)


def _ext_header(cap_id, next_offset, version=1):
    return cap_id | (version << 16) | (next_offset << 20)


ACS_CAP_CTRL = struct.pack("<HH", 0x001F, 0x000D)  # cap SV TB RR CR UF; ctrl SV RR CR


def test_port_type_link_and_acs_behind_other_capabilities():
    data = _config(
        header=0x01,
        caps=[(0x40, 0x01, 0x60, b"\x00" * 6), (0x60, 0x10, 0x00, _pcie_body(4, lnkcap=0x00000104, lnksta=0x0084))],
        ext=[(0x100, _ext_header(0x0001, 0x148, 2), b""), (0x148, _ext_header(0x000D, 0), ACS_CAP_CTRL)],
    )
    config = ConfigSpace(data)
    assert config.port_type == "root_port"
    assert config.is_bridge
    assert config.link.current_speed == 16.0 and config.link.current_width == 8
    assert config.link.max_speed == 16.0 and config.link.max_width == 16
    acs = config.acs
    assert acs.present and acs.offset == 0x148
    assert acs.cap == 0x1F and acs.ctrl == 0x0D
    assert acs.redirects and acs.redirect_flags == ["RR", "CR"]


@pytest.mark.parametrize(
    "ctrl, redirects",
    [
        (0x0000, False),
        (0x0001, False),
        (0x0004, True),
        (0x0008, True),
        (0x0010, False),
        (0x0020, True),
        (0x0040, False),
    ],
)
def test_only_rr_cr_ec_count_as_redirect(ctrl, redirects):
    data = _config(
        caps=[(0x40, 0x10, 0x00, _pcie_body(6))],
        ext=[(0x100, _ext_header(0x000D, 0), struct.pack("<HH", 0x007F, ctrl))],
    )
    assert ConfigSpace(data).acs.redirects is redirects


def test_64_bytes_means_acs_unknown_not_absent():
    data = _config(size=64, caps=[(0x40, 0x10, 0x00, _pcie_body(0))])
    config = ConfigSpace(data)
    assert config.vendor == 0x1B36
    assert config.truncated
    assert config.acs is None
    assert config.port_type is None


def test_256_bytes_read_in_full_is_the_kernels_view_without_extended_space():
    data = _config(size=256, caps=[(0x40, 0x10, 0x00, _pcie_body(0))])
    config = ConfigSpace(data)
    assert not config.readable_extended
    assert config.port_type == "endpoint"
    assert config.acs is not None and not config.acs.present and not config.acs.redirects


def test_256_bytes_of_a_4096_byte_file_is_unknown():
    data = _config(size=256, caps=[(0x40, 0x10, 0x00, _pcie_body(0))])
    assert ConfigSpace(data, size=4096).acs is None


def test_no_extended_capabilities_and_unreadable_headers():
    assert not ConfigSpace(_config(caps=[(0x40, 0x10, 0x00, _pcie_body(0))])).acs.present
    looping = _config(ext=[(0x100, 0xFFFFFFFF, b"")])
    assert not ConfigSpace(looping).acs.present


def test_extended_list_stops_at_a_pointer_below_0x100_and_ignores_later_caps():
    data = _config(
        ext=[(0x100, _ext_header(0x0001, 0x0FC), b""), (0x0FC, _ext_header(0x000D, 0), ACS_CAP_CTRL)],
    )
    assert not ConfigSpace(data).acs.present


def test_capability_list_without_status_bit_is_empty():
    data = _config(status=0x0000, caps=[(0x40, 0x10, 0x00, _pcie_body(0))])
    config = ConfigSpace(data)
    assert config.capabilities() == {}
    assert config.port_type is None


def test_rciep_has_no_link():
    data = _config(caps=[(0x40, 0x10, 0x00, _pcie_body(9))])
    config = ConfigSpace(data)
    assert config.port_type == "rciep"
    assert config.link.current_speed is None


@pytest.mark.parametrize(
    "header, subsystem",
    [(0x00, (0x1AF4, 0x1100)), (0x80, (0x1AF4, 0x1100)), (0x01, (None, None)), (0x02, (None, None))],
)
def test_subsystem_ids_come_from_a_type_0_header_only(header, subsystem):
    data = bytearray(_config(header=header))
    struct.pack_into("<HH", data, 0x2C, 0x1AF4, 0x1100)
    config = ConfigSpace(bytes(data))
    assert (config.subsystem_vendor, config.subsystem_device) == subsystem


@pytest.mark.parametrize(
    "link, text",
    [
        (LinkInfo(8.0, 4, 16.0, 4), "8 GT/s x4 (max 16 GT/s x4)"),
        (LinkInfo(2.5, None, 2.5, 1), "2.5 GT/s x? (max 2.5 GT/s x1)"),
        (LinkInfo(None, None, 32.0, 16), "? x? (max 32 GT/s x16)"),
        (LinkInfo(), "no link"),
    ],
)
def test_link_text(link, text):
    assert link.describe() == text
