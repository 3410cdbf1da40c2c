"""Telling people: the daily digest and the alerts, delivered to Slack through an outbox.

``digest`` computes a day's numbers from the rollups (cost, tokens, latency, quality, drift,
promotions); ``slack`` renders digests and alerts as Block Kit messages with every piece of
trace data escaped, stores each message in the outbox before sending it, and delivers the
outbox with retries, once per message.
"""
