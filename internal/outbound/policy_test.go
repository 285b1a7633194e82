package outbound

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestBlocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip      string
		blocked bool
		reason  string // part of the reason when blocked
	}{
		// IPv4 refused.
		{"0.0.0.0", true, "unspecified"},
		{"0.1.2.3", true, "this-network"},
		{"127.0.0.1", true, "loopback"},
		{"127.255.255.254", true, "loopback"},
		{"10.0.0.1", true, "private"},
		{"10.255.255.255", true, "private"},
		{"172.16.0.1", true, "private"},
		{"172.31.255.255", true, "private"},
		{"192.168.1.1", true, "private"},
		{"100.64.0.1", true, "CGNAT"},
		{"100.127.255.255", true, "CGNAT"},
		{"100.100.100.200", true, "metadata"},
		{"169.254.0.1", true, "link-local"},
		{"169.254.169.254", true, "metadata"},
		{"192.0.0.170", true, "IETF"},
		{"192.0.2.1", true, "documentation"},
		{"198.18.0.1", true, "benchmarking"},
		{"198.19.255.255", true, "benchmarking"},
		{"198.51.100.7", true, "documentation"},
		{"203.0.113.9", true, "documentation"},
		{"224.0.0.1", true, "multicast"},
		{"239.255.255.250", true, "multicast"},
		{"240.0.0.1", true, "reserved"},
		{"255.255.255.255", true, "broadcast"},

		// IPv6 refused.
		{"::", true, "unspecified"},
		{"::1", true, "loopback"},
		{"::ffff:127.0.0.1", true, "loopback"},
		{"::ffff:7f00:1", true, "loopback"},
		{"::ffff:169.254.169.254", true, "metadata"},
		{"::ffff:10.1.2.3", true, "private"},
		{"::127.0.0.1", true, "IPv4-compatible"},
		{"::ffff:0:7f00:1", true, "IPv4-translated"},
		{"64:ff9b::7f00:1", true, "loopback address behind NAT64"},
		{"64:ff9b::a9fe:a9fe", true, "metadata address behind NAT64"},
		{"64:ff9b:1::1", true, "NAT64"},
		{"2002:7f00:1::", true, "loopback address behind 6to4"},
		{"2002:a00:1::1", true, "private address behind 6to4"},
		{"2001::1", true, "Teredo"},
		{"2001:2::1", true, "benchmarking"},
		{"2001:db8::1", true, "documentation"},
		{"100::1", true, "discard"},
		{"fc00::1", true, "unique local"},
		{"fd12:3456::1", true, "unique local"},
		{"fd00:ec2::254", true, "metadata"},
		{"fe80::1", true, "link-local"},
		{"fe80::1%eth0", true, "link-local"},
		{"febf:ffff::1", true, "link-local"},
		{"fec0::1", true, "site-local"},
		{"ff02::1", true, "multicast"},
		{"ff05::1%eth0", true, "multicast"},
		{"2001:4:112::1", true, "IETF"},
		{"fbff:ffff::1", true, "reserved"},
		{"fe00::1", true, "reserved"},
		{"1234::1", true, "reserved"},
		{"4000::1", true, "reserved"},

		// Public.
		{"93.184.216.34", false, ""},
		{"8.8.8.8", false, ""},
		{"1.1.1.1", false, ""},
		{"11.0.0.1", false, ""},
		{"100.63.255.255", false, ""},
		{"100.128.0.1", false, ""},
		{"126.255.255.255", false, ""},
		{"128.0.0.1", false, ""},
		{"169.253.255.255", false, ""},
		{"169.255.0.1", false, ""},
		{"172.15.255.255", false, ""},
		{"172.32.0.1", false, ""},
		{"192.167.255.255", false, ""},
		{"192.169.0.1", false, ""},
		{"198.17.255.255", false, ""},
		{"198.20.0.1", false, ""},
		{"223.255.255.255", false, ""},
		{"::ffff:93.184.216.34", false, ""},
		{"2606:4700::1", false, ""},
		{"2001:4860:4860::8888", false, ""},
		{"2a00:1450:4007:80e::200e", false, ""},
		{"64:ff9b::808:808", false, ""},
		{"2002:808:808::1", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			t.Parallel()
			ip := netip.MustParseAddr(tt.ip)
			if got := Blocked(ip); got != tt.blocked {
				t.Fatalf("Blocked(%s) = %v, want %v", tt.ip, got, tt.blocked)
			}
			if got := classify(ip); !strings.Contains(got, tt.reason) {
				t.Errorf("classify(%s) = %q, want it to contain %q", tt.ip, got, tt.reason)
			}
		})
	}
}

func TestBlockedInvalidAddress(t *testing.T) {
	t.Parallel()
	if !Blocked(netip.Addr{}) {
		t.Error("the zero netip.Addr must be refused")
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  BlockedError
		want string
	}{
		{
			name: "literal",
			err:  BlockedError{Host: "127.0.0.1", IP: netip.MustParseAddr("127.0.0.1")},
			want: "outbound: refusing to connect to 127.0.0.1 (loopback address); " +
				"set PLUGBOARD_ALLOW_PRIVATE_NETWORKS=true to allow private networks",
		},
		{
			name: "host name",
			err:  BlockedError{Host: "metadata.internal", IP: netip.MustParseAddr("169.254.169.254")},
			want: "outbound: refusing to connect to metadata.internal at 169.254.169.254 (cloud metadata address); " +
				"set PLUGBOARD_ALLOW_PRIVATE_NETWORKS=true to allow private networks",
		},
		{
			name: "no host",
			err:  BlockedError{IP: netip.MustParseAddr("10.0.0.1")},
			want: "outbound: refusing to connect to 10.0.0.1 (private address); " +
				"set PLUGBOARD_ALLOW_PRIVATE_NETWORKS=true to allow private networks",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestIsBlocked(t *testing.T) {
	t.Parallel()
	blocked := &BlockedError{Host: "localhost", IP: netip.MustParseAddr("::1")}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"other", errors.New("boom"), false},
		{"bare", blocked, true},
		{"wrapped", fmt.Errorf("calling API: %w", blocked), true},
		{"url error", &url.Error{Op: "Get", URL: "http://localhost/", Err: blocked}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := IsBlocked(tt.err); got != tt.want {
				t.Errorf("IsBlocked(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestParseLegacyIPv4(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		want string // "" when not an IPv4 form
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.0.0.1.", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0X7F.0.0.1", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"0x", "0.0.0.0"},
		{"0xa9fea9fe", "169.254.169.254"},
		{"169.254.43518", "169.254.169.254"},
		{"4294967295", "255.255.255.255"},
		{"4294967296", ""},
		{"256.0.0.1", ""},
		{"1.2.3.256", ""},
		{"1.2.65536", ""},
		{"1.16777216", ""},
		{"1.2.3.4.5", ""},
		{"08.0.0.1", ""},
		{"0x7g.0.0.1", ""},
		{"+1.2.3.4", ""},
		{"1_0.0.0.1", ""},
		{"1..2", ""},
		{"", ""},
		{".", ""},
		{"example.com", ""},
		{"localhost", ""},
		{"::1", ""},
		{"1e3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			got, ok := parseLegacyIPv4(tt.host)
			if tt.want == "" {
				if ok {
					t.Fatalf("parseLegacyIPv4(%q) = %s, want no address", tt.host, got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("parseLegacyIPv4(%q) = %s, %v, want %s", tt.host, got, ok, tt.want)
			}
		})
	}
}

func FuzzParseLegacyIPv4(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "0x7f.1", "2130706433", "0177.0.0.1", "1.2.3.4.", "example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		ip, ok := parseLegacyIPv4(host)
		if !ok {
			return
		}
		if !ip.Is4() {
			t.Fatalf("parseLegacyIPv4(%q) = %s, not IPv4", host, ip)
		}
		// Plain dotted-decimal input must agree with netip.
		if want, err := netip.ParseAddr(host); err == nil && want.Is4() && want != ip {
			t.Fatalf("parseLegacyIPv4(%q) = %s, netip says %s", host, ip, want)
		}
	})
}
