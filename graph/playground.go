package graph

import (
	"net/http"

	"github.com/99designs/gqlgen/graphql/playground"
)

// Playground returns the in-browser GraphQL IDE pointed at endpoint.
func Playground(endpoint string) http.Handler {
	return playground.Handler("apikeyd GraphQL playground", endpoint)
}
