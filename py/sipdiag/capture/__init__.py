"""Capture files to packets: pcap/pcapng reading and writing, link layers and
tunnels, IP fragment and TCP stream reassembly, and the per-packet decoder
that hands each payload to its protocol."""
