"""反诈助手 runtime: settings, pipeline, session store, channels, HTTP app, CLI."""
