// Package pcapng writes capture files in the pcapng format that tcpdump,
// tshark and Wireshark read: a section header, interface descriptions,
// enhanced packet blocks (with a comment and a direction per packet) and
// interface statistics (received and dropped counts).
//
// It writes what a live capture of the data path needs and nothing more;
// it reads nothing (tests read its output back with gopacket and tshark).
// Blocks are written in the machine's byte order, as the format allows
// (readers detect it from the section header); timestamps are in
// nanoseconds (if_tsresol 9).
//
// A Writer keeps one buffer and reuses it, so writing a packet allocates
// nothing once the buffer has grown to the largest block.
package pcapng
