"""Where audio comes from (sources) and where labels go (sinks)."""
