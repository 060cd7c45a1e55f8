// Package replay runs the production pipeline over a pcap file: every
// packet goes through the same Worker.Process the live data path uses, in
// input order; forwarded frames are written to an output pcap and every
// packet's verdict to a CSV.
package replay
