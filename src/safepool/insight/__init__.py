"""Customer information for the city (the handbook's chapter 3): segments, from features."""
