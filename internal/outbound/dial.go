package outbound

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// dialer connects for the transport. When refuse is set it is asked about
// every address the connection is actually attempted to, after name
// resolution, from net.Dialer.Control: a redirect, a DNS answer that changes
// between look-ups (rebinding) or a second address tried by Happy Eyeballs
// all pass through the same check.
type dialer struct {
	timeout   time.Duration
	keepAlive time.Duration
	// refuse reports whether the address must not be connected to; nil
	// allows every address.
	refuse func(netip.AddrPort) bool
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("outbound: splitting address %q: %w", addr, err)
	}
	target := addr
	// Browsers and getaddrinfo read 0x7f.1, 2130706433 or 0177.0.0.1 as
	// 127.0.0.1; make that reading explicit so the policy sees the address
	// whichever resolver is in use.
	if ip, ok := parseLegacyIPv4(host); ok {
		target = net.JoinHostPort(ip.String(), port)
	}
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: d.keepAlive}
	if d.refuse != nil {
		nd.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				// Fail closed: an address we cannot read is not checked.
				return fmt.Errorf("outbound: parsing dialed address %q: %w", address, err)
			}
			if d.refuse(ap) {
				return &BlockedError{Host: host, IP: ap.Addr().Unmap()}
			}
			return nil
		}
	}
	return nd.DialContext(ctx, network, target)
}

// refuseBlocked is the production policy.
func refuseBlocked(ap netip.AddrPort) bool {
	return Blocked(ap.Addr())
}

// parseLegacyIPv4 reads host as an IPv4 address in the forms inet_aton and
// the WHATWG URL standard accept: one to four dot-separated parts, each
// decimal, octal (leading 0) or hexadecimal (leading 0x), the last part
// filling the remaining bytes, and an optional trailing dot. It reports
// false for anything else, including IPv6 literals and host names.
func parseLegacyIPv4(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return netip.Addr{}, false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var ip uint32
	for i, p := range parts {
		v, ok := parseLegacyPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if v > 0xff {
				return netip.Addr{}, false
			}
			ip |= uint32(v) << (24 - 8*i)
			continue
		}
		// The last part fills the bytes left: 32 bits alone, 24 after one
		// part, 16 after two, 8 after three.
		if v >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false
		}
		ip |= uint32(v)
	}
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

func parseLegacyPart(p string) (uint64, bool) {
	base := 10
	switch {
	case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
		base, p = 16, p[2:]
		if p == "" {
			return 0, true // "0x" alone is zero
		}
	case len(p) >= 2 && p[0] == '0':
		base, p = 8, p[1:]
	}
	// ParseUint with an explicit base takes no sign, prefix or underscore.
	v, err := strconv.ParseUint(p, base, 32)
	if err != nil {
		return 0, false
	}
	return v, true
}
