"""Channel adapters: each turns its wire protocol into IncomingMessage and sends the replies."""
