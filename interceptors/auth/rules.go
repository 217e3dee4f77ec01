package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/grpckit/grpckit/internal/methodname"
)

// Rule says who may call the methods that Method names. Method is one of:
//
//	/pkg.Service/Method   one method
//	/pkg.Service/*        every method of a service
//	*                     every method
//
// The most specific rule that matches a call decides it; two rules with the
// same Method are an error. A rule allows a caller whose subject is in
// Subjects ("*" there allows every authenticated caller), or who holds one
// of Roles or one of Scopes. A Public rule lets every call through, without
// authentication (the handler then sees no identity); it names no
// subjects, roles or scopes.
//
// Health checks (/grpc.health.v1.Health/*) and reflection
// (/grpc.reflection.v1.ServerReflection/* and its v1alpha) are public
// unless a rule names the same Method: load balancers and probes call
// health without credentials, and reflection reveals only the schema.
type Rule struct {
	Method   string
	Subjects []string
	Roles    []string
	Scopes   []string
	Public   bool
}

// defaultPublic are the services public unless a rule names them.
var defaultPublic = [...]string{
	"/grpc.health.v1.Health",
	"/grpc.reflection.v1.ServerReflection",
	"/grpc.reflection.v1alpha.ServerReflection",
}

func (r *Rule) allows(id *Identity) bool {
	for _, s := range r.Subjects {
		if s == "*" || s == id.Subject {
			return true
		}
	}
	for _, want := range r.Roles {
		if slices.Contains(id.Roles, want) {
			return true
		}
	}
	for _, want := range r.Scopes {
		if slices.Contains(id.Scopes, want) {
			return true
		}
	}
	return false
}

// ruleSet finds the rule of a method: exact, then service, then "*".
type ruleSet struct {
	exact    map[string]*Rule
	service  map[string]*Rule // by "/pkg.Service"
	all      *Rule
	enforced bool // the user set rules: default deny
}

func newRuleSet(rules []Rule) (*ruleSet, error) {
	rs := &ruleSet{exact: map[string]*Rule{}, service: map[string]*Rule{}, enforced: len(rules) > 0}
	for i := range rules {
		r := rules[i]
		r.Subjects, r.Roles, r.Scopes = slices.Clone(r.Subjects), slices.Clone(r.Roles), slices.Clone(r.Scopes)
		if err := rs.add(&r); err != nil {
			return nil, err
		}
	}
	for _, svc := range defaultPublic {
		if _, ok := rs.service[svc]; !ok {
			rs.service[svc] = &Rule{Method: svc + "/*", Public: true}
		}
	}
	return rs, nil
}

func (rs *ruleSet) add(r *Rule) error {
	if err := validRule(r); err != nil {
		return err
	}
	var slot **Rule
	switch {
	case r.Method == "*":
		slot = &rs.all
	case strings.HasSuffix(r.Method, "/*"):
		svc := strings.TrimSuffix(r.Method, "/*")
		p := rs.service[svc]
		slot = &p
		defer func() { rs.service[svc] = *slot }()
	default:
		p := rs.exact[r.Method]
		slot = &p
		defer func() { rs.exact[r.Method] = *slot }()
	}
	if *slot != nil {
		return fmt.Errorf("%w: two rules for %q", ErrInvalid, r.Method)
	}
	*slot = r
	return nil
}

func validRule(r *Rule) error {
	if err := validPattern(r.Method); err != nil {
		return err
	}
	n := len(r.Subjects) + len(r.Roles) + len(r.Scopes)
	if r.Public && n > 0 {
		return fmt.Errorf("%w: rule %q: a public rule names no subjects, roles or scopes", ErrInvalid, r.Method)
	}
	if !r.Public && n == 0 {
		return fmt.Errorf("%w: rule %q allows nobody: name subjects, roles or scopes, or make it public", ErrInvalid, r.Method)
	}
	for _, list := range [][]string{r.Subjects, r.Roles, r.Scopes} {
		if slices.Contains(list, "") {
			return fmt.Errorf("%w: rule %q: empty subject, role or scope", ErrInvalid, r.Method)
		}
	}
	return nil
}

// validPattern accepts "*", "/svc/*" and "/svc/method", where svc and
// method are non-empty and hold no '/', '*' or whitespace.
func validPattern(p string) error {
	if p == "*" {
		return nil
	}
	svc, m, ok := methodname.Split(p)
	if !ok || !validName(svc[1:]) || (m != "*" && !validName(m)) {
		return fmt.Errorf("%w: rule method %q: want /pkg.Service/Method, /pkg.Service/* or *", ErrInvalid, p)
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '/' || c == '*' || c <= ' ' || c == 0x7f:
			return false
		}
	}
	return true
}

// match returns the rule of method, nil if none.
func (rs *ruleSet) match(method string) *Rule {
	if r, ok := rs.exact[method]; ok {
		return r
	}
	if svc, _, ok := methodname.Split(method); ok {
		if r, ok := rs.service[svc]; ok {
			return r
		}
	}
	return rs.all
}
