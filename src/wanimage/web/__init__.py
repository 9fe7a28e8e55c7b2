"""The playground: a static web page that drives the public API (`/` and `/playground`)."""
