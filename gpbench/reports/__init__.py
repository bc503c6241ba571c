"""Reports: read run folders only, summarise with intervals, draw figures and HTML."""
