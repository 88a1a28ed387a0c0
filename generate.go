package main

// graph/ is generated from schema.graphqls and gqlgen.yml.
//go:generate go tool gqlgen generate --config gqlgen.yml
