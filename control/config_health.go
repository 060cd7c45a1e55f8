package control

import (
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// health parses a service's health block. servicePort is the service's
// port (0 = every port) and portOK whether it parsed; a check needs a port
// of its own when the service has none.
func (p *parser) health(n *yaml.Node, path string, servicePort uint16, portOK bool) *Health {
	f, ok := p.mapping(n, path, healthKeys)
	if !ok {
		return nil
	}
	h := &Health{
		Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
		Rise: DefaultHealthRise, Fall: DefaultHealthFall, Via: ViaDirect,
	}
	good := true
	if e := f["via"]; e != nil {
		if v, ok := p.enum(e, path+".via", ViaDirect, ViaGRE); ok {
			h.Via = v
		} else {
			good = false
		}
	}
	if e := f["type"]; e != nil {
		if t, ok := p.enum(e, path+".type", "tcp", "http", "udp"); ok {
			h.Type = HealthType(t)
		} else {
			good = false
		}
	} else {
		p.errf(n, path+".type", "required (tcp, http or udp)")
		good = false
	}
	if e := f["port"]; e != nil {
		if port, ok := p.uint(e, path+".port", math.MaxUint16); ok {
			if port == 0 {
				p.errf(e, path+".port", "must be 1 to 65535")
				good = false
			}
			h.Port = uint16(port)
		} else {
			good = false
		}
	} else if portOK {
		if servicePort == 0 {
			p.errf(n, path+".port", "required: the service serves every port, so say which one to check (e.g. port: 80)")
			good = false
		}
		h.Port = servicePort
	}
	if e := f["path"]; e != nil {
		if s, ok := p.str(e, path+".path"); ok {
			switch {
			case h.Type != "" && h.Type != HealthHTTP:
				p.errf(e, path+".path", "only http checks have a path (type is %s)", h.Type)
				good = false
			case !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \t\r\n"):
				p.errf(e, path+".path", "%q must start with / and hold no spaces (e.g. /healthz)", s)
				good = false
			default:
				h.Path = s
			}
		} else {
			good = false
		}
	}
	if e := f["status"]; e != nil {
		if lo, hi, ok := p.statusRange(e, path+".status"); ok {
			if h.Type != "" && h.Type != HealthHTTP {
				p.errf(e, path+".status", "only http checks have an expected status (type is %s)", h.Type)
				good = false
			}
			h.StatusMin, h.StatusMax = lo, hi
		} else {
			good = false
		}
	}
	if h.Type == HealthHTTP {
		if h.Path == "" {
			h.Path = DefaultHealthPath
		}
		if h.StatusMin == 0 {
			h.StatusMin, h.StatusMax = DefaultStatusMin, DefaultStatusMax
		}
	}
	intervalOK := true
	if e := f["interval"]; e != nil {
		if d, ok := p.durationMin(e, path+".interval", MinHealthInterval); ok {
			h.Interval = d
		} else {
			good, intervalOK = false, false
		}
	}
	if e := f["timeout"]; e != nil {
		if d, ok := p.durationMin(e, path+".timeout", MinHealthInterval); ok {
			h.Timeout = d
			if intervalOK && d > h.Interval {
				p.errf(e, path+".timeout", "%s is longer than the interval (%s): a check must end before the next one starts", d, h.Interval)
				good = false
			}
		} else {
			good = false
		}
	} else if intervalOK && h.Timeout > h.Interval {
		h.Timeout = h.Interval
	}
	for _, k := range []struct {
		key string
		v   *int
	}{{"rise", &h.Rise}, {"fall", &h.Fall}} {
		e := f[k.key]
		if e == nil {
			continue
		}
		if v, ok := p.uint(e, path+"."+k.key, MaxRiseFall); ok && v >= 1 {
			*k.v = int(v)
		} else {
			if ok {
				p.errf(e, path+"."+k.key, "must be at least 1")
			}
			good = false
		}
	}
	if !good {
		return nil
	}
	return h
}

// statusRange accepts an HTTP status (200) or an inclusive range (200-399).
func (p *parser) statusRange(n *yaml.Node, path string) (int, int, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return 0, 0, false
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	switch {
	case err1 != nil || err2 != nil:
		p.errf(n, path, "%q is not a status or a range of statuses (e.g. 200 or 200-399)", s)
	case a < 100 || b > 599:
		p.errf(n, path, "%q: HTTP statuses are 100 to 599", s)
	case a > b:
		p.errf(n, path, "%q: the range is empty (write low-high)", s)
	default:
		return a, b, true
	}
	return 0, 0, false
}

// api parses the admin API block.
func (p *parser) api(n *yaml.Node, a *API) {
	f, ok := p.mapping(n, "api", apiKeys)
	if !ok {
		return
	}
	if e := f["socket"]; e != nil {
		if s, ok := p.str(e, "api.socket"); ok {
			if strings.ContainsRune(s, 0) || len(s) > 107 {
				p.errf(e, "api.socket", "%q is not a usable unix socket path (at most 107 bytes)", s)
			} else {
				a.Socket = s
			}
		}
	}
	if e := f["address"]; e != nil && !(e.Kind == yaml.ScalarNode && e.Value == "") {
		if s, ok := p.str(e, "api.address"); ok {
			if msg := checkHostPort(s); msg != "" {
				p.errf(e, "api.address", "%s", msg)
			} else {
				a.Address = s
			}
		}
	}
	if e := f["token_file"]; e != nil && !(e.Kind == yaml.ScalarNode && e.Value == "") {
		if s, ok := p.str(e, "api.token_file"); ok {
			a.TokenFile = s
			if f["address"] == nil || f["address"].Value == "" {
				p.warnf(e, "api.token_file", "used only with api.address (the unix socket needs no token)")
			}
		}
	}
	if a.Address != "" && a.TokenFile == "" {
		p.errf(f["address"], "api.address", "a TCP listener needs api.token_file (a file holding the bearer token)")
	}
}
