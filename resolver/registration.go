package resolver

import "time"

// Registration is a registrar's state as an admin page shows it: the
// etcd and Consul registrars report it from their Status method, and
// server.Server lists the Status of its registrar.
type Registration struct {
	// Registry names the registry ("etcd", "consul").
	Registry string `json:"registry"`
	// Service is the registered service; Key, the registry's name for
	// this registration (the etcd key, the Consul service ID).
	Service string `json:"service"`
	Key     string `json:"key"`
	// Address is the registered address, once Register was called.
	Address string `json:"address,omitempty"`
	// Registered is set while the registry holds the registration.
	Registered bool `json:"registered"`
	// Since is when Registered last changed.
	Since time.Time `json:"since,omitzero"`
	// Error is the latest error while the registration is lost or not
	// yet made.
	Error string `json:"error,omitempty"`
	// Repairs counts the registrations made again after one was lost.
	Repairs int `json:"repairs"`
}
