// cli (under construction)
