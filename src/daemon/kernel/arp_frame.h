// ArpFrame: the bytes of an ARP request (RFC 826; a probe when the sender
// address is 0.0.0.0, RFC 5227) and the link-layer broadcast it goes to.
// One definition for raisd's announcer and the cluster tests' arpwatch, so
// the watcher asks the LAN exactly the way raisd does. Pure: no I/O.
#pragma once

#include <netpacket/packet.h>
#include <net/ethernet.h>
#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace rais {

// Ethernet/IPv4 ARP request from (sender MAC, sender IPv4) for target IPv4;
// the target hardware address stays zero.
inline std::array<std::uint8_t, 28> arp_request_frame(const std::uint8_t* sender_mac, const std::uint8_t* sender_ip,
                                                       const std::uint8_t* target_ip) {
    std::array<std::uint8_t, 28> pkt{0, 1, 0x08, 0, 6, 4, 0, 1};  // Ethernet, IPv4, 6 + 4 bytes, request
    std::memcpy(pkt.data() + 8, sender_mac, 6);
    std::memcpy(pkt.data() + 14, sender_ip, 4);
    std::memcpy(pkt.data() + 24, target_ip, 4);
    return pkt;
}

// The Ethernet broadcast on interface `ifindex`, for a SOCK_DGRAM packet socket.
inline sockaddr_ll arp_broadcast(int ifindex) {
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(ETH_P_ARP);
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    std::memset(to.sll_addr, 0xFF, 6);
    return to;
}

}  // namespace rais
