"""The one throughput formula, for one value and for a column."""

import numpy as np
import pandas as pd

from bench.results.derived import throughput


def test_throughput_of_a_value_and_of_a_column_agree():
    assert throughput(8, 4.0) == 2000.0
    assert throughput(8, None) is None and throughput(8, 0.0) is None
    column = throughput(pd.Series([8.0, 8.0, 8.0]), pd.Series([4.0, 0.0, np.nan]))
    assert column.iloc[0] == 2000.0 and column.iloc[1:].isna().all()
    array = throughput(8.0, np.array([4.0, -1.0]))
    assert array[0] == 2000.0 and np.isnan(array[1])
