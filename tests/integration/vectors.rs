// vectors (under construction)
