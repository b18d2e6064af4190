"""Ticket deliveries beside the incidents topic: Alertmanager-style webhooks and PagerDuty Events API v2.

``delivery`` holds the HTTP side (a bounded queue and a retrying sender per sink, no Faust); ``agent`` the
Faust agent that reads the incidents topic and hands each revision to the sinks whose route it matches.
"""
