// Package graph is apikeyd's GraphQL API: the executor gqlgen generates from
// schema.graphqls and resolvers that are one-line calls into apikey.Service
// and org.Service.
package graph

import (
	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/org"
)

// Resolver holds the resolvers' dependencies, nothing else.
type Resolver struct {
	Keys  *apikey.Service
	Orgs  *org.Service
	Audit *audit.Service
}
