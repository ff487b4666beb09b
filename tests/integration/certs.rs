// certs (under construction)
