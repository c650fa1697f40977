"""The preference-study web page: a Flask server, its static page and the SQLite vote store."""
