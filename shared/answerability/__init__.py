"""Can the documentation answer this question? The decision behind every "I don't know".

    scope.classify(message)      small talk and attempts to change the rules, answered without retrieval
    terms.question_terms(...)    the question's salient terms, weighted by their rarity in the knowledge base
    gate.Gate.assess(...)        the probability that the retrieved documents answer the question (logistic
                                 regression over several signals, coefficients in gate/model.json); the turn's
                                 `confidence`, gating the Gemini and the extractive answerer alike

Nothing is imported here: the submodules are imported where they are used (the extractive answerer needs `terms`
and `scope`, the gate needs the extractive answerer's passage splitter).
"""
