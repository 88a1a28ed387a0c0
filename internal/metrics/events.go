package metrics

import "github.com/prometheus/client_golang/prometheus"

// eventMetrics count the audit log and webhook deliveries.
type eventMetrics struct {
	auditEvents *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	queueDepth  prometheus.Gauge
}

// webhookOutcomes are the outcomes of a delivery attempt.
var webhookOutcomes = []string{"delivered", "failed", "given_up"}

func newEventMetrics(r *prometheus.Registry) eventMetrics {
	e := eventMetrics{
		auditEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apikeyd_audit_events_total",
			Help: "Audit events written (committed), by action.",
		}, []string{"action"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apikeyd_webhook_deliveries_total",
			Help: "Webhook delivery attempts, by outcome: delivered (2xx), failed (retried later), given_up (the last attempt failed).",
		}, []string{"outcome"}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apikeyd_webhook_queue_depth",
			Help: "Webhook events waiting for delivery, as this server last counted them.",
		}),
	}
	r.MustRegister(e.auditEvents, e.deliveries, e.queueDepth)
	for _, o := range webhookOutcomes {
		e.deliveries.WithLabelValues(o)
	}
	return e
}

// AuditEventWritten counts a committed audit event.
func (m *Metrics) AuditEventWritten(action string) { m.auditEvents.WithLabelValues(action).Inc() }

// WebhookAttempt counts a delivery attempt by outcome (delivered, failed,
// given_up).
func (m *Metrics) WebhookAttempt(outcome string) { m.deliveries.WithLabelValues(outcome).Inc() }

// WebhookQueue sets the webhook queue depth.
func (m *Metrics) WebhookQueue(n int) { m.queueDepth.Set(float64(n)) }
