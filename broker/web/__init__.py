"""Pages a person sees: templates, static files, translations."""
