"""p2pctl: provision and check PCIe peer-to-peer DMA storage nodes."""

__version__ = "0.1.0"
