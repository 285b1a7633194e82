package outbound

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
)

// allowSetting names the operator setting that turns the policy off. It only
// appears in error messages: the caller reads the setting and passes
// Options.AllowPrivate.
const allowSetting = "PLUGBOARD_ALLOW_PRIVATE_NETWORKS"

// BlockedError says the client refused to connect to IP, which Host (the
// host name or literal of the request, without port) resolved to. It is
// returned from the dialer, so callers see it wrapped in *url.Error and
// *net.OpError; use errors.As or IsBlocked.
type BlockedError struct {
	Host string
	IP   netip.Addr
}

func (e *BlockedError) Error() string {
	reason := classify(e.IP)
	if reason == "" {
		reason = "address not allowed"
	}
	target := e.IP.String()
	if e.Host != "" && e.Host != target {
		target = e.Host + " at " + target
	}
	return fmt.Sprintf("outbound: refusing to connect to %s (%s); set %s=true to allow private networks",
		target, reason, allowSetting)
}

// IsBlocked reports whether err, or an error it wraps, is a *BlockedError.
func IsBlocked(err error) bool {
	_, ok := errors.AsType[*BlockedError](err)
	return ok
}

// Blocked reports whether the policy refuses connections to ip: loopback,
// unspecified, private (RFC 1918, unique local), shared (CGNAT), link-local,
// cloud metadata, multicast, broadcast, reserved, benchmarking and
// documentation ranges, and IPv6 addresses that embed a refused IPv4 address
// (IPv4-mapped, NAT64, 6to4); of IPv6 only the global unicast space
// (2000::/3) is allowed. An invalid address is refused.
func Blocked(ip netip.Addr) bool {
	return classify(ip) != ""
}

// rangeReason is a refused range and the words the error uses for it.
type rangeReason struct {
	prefix netip.Prefix
	reason string
}

// refusedRanges is checked in order: narrower, more telling entries come
// before the ranges that contain them.
var refusedRanges = []rangeReason{
	// Cloud metadata services, named before the ranges holding them.
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata address"},
	{netip.MustParsePrefix("100.100.100.200/32"), "cloud metadata address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata address"},

	// IPv4.
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified address"},
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared CGNAT address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved address"},

	// IPv6.
	{netip.MustParsePrefix("::/128"), "unspecified address"},
	{netip.MustParsePrefix("::1/128"), "loopback address"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible address"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 address"},
	{netip.MustParsePrefix("100::/64"), "discard-only address"},
	{netip.MustParsePrefix("2001::/32"), "Teredo address"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking address"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment address"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation address"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (private) address"},
	{netip.MustParsePrefix("fe80::/10"), "link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "multicast address"},
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
	// globalUnicast is the only IPv6 space allocated for the public
	// Internet; anything else is special-purpose or unassigned.
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// classify returns why ip is refused, or "" when it is allowed.
func classify(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid address"
	}
	// Prefix.Contains never matches an address with a zone, and an
	// IPv4-mapped IPv6 address never matches an IPv4 prefix: normalise first.
	ip = ip.WithZone("").Unmap()
	for _, r := range refusedRanges {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	if !ip.Is6() {
		return ""
	}
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip):
		if reason := classify(netip.AddrFrom4([4]byte(b[12:16]))); reason != "" {
			return reason + " behind NAT64"
		}
	case sixToFour.Contains(ip):
		if reason := classify(netip.AddrFrom4([4]byte(b[2:6]))); reason != "" {
			return reason + " behind 6to4"
		}
	case !globalUnicast.Contains(ip):
		return "reserved address"
	}
	return ""
}

// IsFinal reports whether an outbound call failed in a way that trying
// again cannot mend: the address is refused, or the answer is too large.
func IsFinal(err error) bool {
	return IsBlocked(err) || errors.Is(err, ErrResponseTooLarge)
}

// RetryableStatus reports whether an error status may pass if the call is
// made again: 408, 429 and 5xx. Other 4xx answers will not.
func RetryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}
