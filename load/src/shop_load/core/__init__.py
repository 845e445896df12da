"""What every part shares: the customers and their shopping, the records they leave, the operator's door (`ops`,
`stock`), the Prometheus scrape and the drill's options and faults."""
