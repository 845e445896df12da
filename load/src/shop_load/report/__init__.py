"""The drill's report and its renderers: the timeline, the JSON report, the text summary and the PNG."""
