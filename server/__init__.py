"""Team mode's Sealroom service (issue 29): one index of the firm's shared drives for many readers, on
existing servers (PostgreSQL, Chroma's server, llama.cpp's server), with matter walls. Off by default; a
laptop never imports it."""
