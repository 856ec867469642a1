"""What a results folder says: the leaderboard and its seed statistics, paired comparisons,
the regression check and the HTML report."""
