"""The container proof: the shop and PostgreSQL in containers, a real OOM kill and a database outage."""
