"""Telling people: the daily digest and the alerts, delivered to Slack through an outbox.

The digest's numbers: ``digest`` computes a day's from the rollups (cost, tokens, latency,
quality, budget, chart), ``caching`` estimates what a response cache would have saved,
``activity`` reads what the registry, evaluations and drift detection recorded, and
``digest_data`` is the result as plain data. The messages: ``formatting`` escapes trace data
and writes numbers, ``render`` lays digests and alerts out as Block Kit (within Slack's
limits), markdown and plain text, and ``chart`` draws the cost chart. Delivery: ``outbox``
stores each message once before it is sent, and ``delivery`` sends the outbox with retries,
once per message. ``slack`` re-exports the Slack side for the layers above the core.
"""
