"""The post-incident review report: figures computed from an incident's ledger rows alone
(`eucp.review.figures`, pure) and written as Markdown, JSON and HTML (`eucp.review.render`).

Nothing here is imported at package level, so importing `eucp.review` stays cheap; the
plotting library is imported only when a chart is drawn.
"""
