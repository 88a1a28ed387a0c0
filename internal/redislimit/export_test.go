package redislimit

import "github.com/redis/go-redis/v9"

// ClientOf returns the Redis client of l.
func ClientOf(l *Limiter) *redis.Client { return l.client }
