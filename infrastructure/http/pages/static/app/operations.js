// Generated from webapp/operations/*.graphql by `make webapp`: do not edit.
export const OPERATIONS = {
  "Attempts": {
    "id": "sha256:2dd1fb344ce28da8f8171ed80ee59cc49bbfc3fddb731eadcb0df07036631b3a",
    "document": "query Attempts($first: Int!) {\n  me {\n    id\n    registrationAttempts(first: $first) {\n      at\n      reason\n      section {\n        id\n        sectionNumber\n        course {\n          code\n          name\n        }\n      }\n    }\n  }\n}"
  },
  "ClaimSeat": {
    "id": "sha256:ccbdf3e476fec7de8625d11cdc48a8b62d3297cc6329f3f5b65c9ef852dee319",
    "document": "mutation ClaimSeat($studentId: UUID!, $sectionId: UUID!) {\n  claimSeat(studentId: $studentId, sectionId: $sectionId) {\n    studentId\n    sectionId\n    status\n  }\n}"
  },
  "DeclineOffer": {
    "id": "sha256:2bb844349f4123fcf81129715d17de3d6df3e1126da11ab048618149f287321b",
    "document": "mutation DeclineOffer($studentId: UUID!, $sectionId: UUID!) {\n  declineOffer(studentId: $studentId, sectionId: $sectionId) {\n    studentId\n    sectionId\n    status\n  }\n}"
  },
  "Drop": {
    "id": "sha256:19aa85daa0b287bd45f1d5040087d7e6b1f9ab049ab90beec5d3b99fc08dc423",
    "document": "mutation Drop($input: DropInput!) {\n  drop(input: $input) {\n    studentId\n    sectionId\n    outcome\n    availableSeats\n  }\n}"
  },
  "Me": {
    "id": "sha256:5775c34ff7a6b7b17e5e40f2fc7974bbd5b1b262f17eb6192d79262261b7ac0a",
    "document": "query Me {\n  me {\n    id\n    studentNumber\n    firstName\n    lastName\n    enrollmentStatus\n    maxCredits\n  }\n}"
  },
  "MySchedule": {
    "id": "sha256:7d896d8db29e8d065e60f51d0524010c667906ce564066509e18f67e22361266",
    "document": "query MySchedule {\n  me {\n    id\n    maxCredits\n    registrations(status: ENROLLED) {\n      id\n      registeredAt\n      section {\n        id\n        sectionNumber\n        isActive\n        totalSeats\n        availableSeats\n        waitlistLength\n        waitlistMode\n        semester {\n          id\n        }\n        course {\n          id\n          code\n          name\n          credits\n        }\n        meetings {\n          days\n          startTime\n          endTime\n          location\n        }\n      }\n    }\n    waitlist {\n      position\n      joinedAt\n      expiresAt\n      section {\n        id\n        sectionNumber\n        isActive\n        totalSeats\n        availableSeats\n        waitlistLength\n        waitlistMode\n        semester {\n          id\n        }\n        course {\n          id\n          code\n          name\n          credits\n        }\n        meetings {\n          days\n          startTime\n          endTime\n          location\n        }\n      }\n    }\n  }\n}"
  },
  "Register": {
    "id": "sha256:165967652b468210f2535610b994935b38d104cb4fb3204bb390e2c7a60aebe5",
    "document": "mutation Register($input: RegisterInput!) {\n  register(input: $input) {\n    studentId\n    results {\n      sectionId\n      outcome\n      waitlistPosition\n      availableSeats\n      reason\n    }\n  }\n}"
  },
  "SeatUpdates": {
    "id": "sha256:9022f69a150771b630bff1d53a0d9dc2e52045903e8af9a034d8f27f8e29b435",
    "document": "subscription SeatUpdates($sectionIds: [UUID!]!) {\n  seatUpdates(sectionIds: $sectionIds) {\n    sectionId\n    availableSeats\n    totalSeats\n    waitlistLength\n    version\n  }\n}"
  },
  "Sections": {
    "id": "sha256:25468d626841de6f6c75e087b1382992a042cfeb3126739c7c59971ce021d696",
    "document": "query Sections($semesterId: UUID!, $first: Int!, $after: String) {\n  sections(filter: { semesterId: $semesterId }, first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      node {\n        id\n        sectionNumber\n        isActive\n        totalSeats\n        availableSeats\n        waitlistLength\n        waitlistMode\n        course {\n          id\n          code\n          name\n          credits\n        }\n        meetings {\n          days\n          startTime\n          endTime\n          location\n        }\n        linkedSections {\n          id\n        }\n      }\n    }\n  }\n}"
  },
  "Semesters": {
    "id": "sha256:a153384ec75ebf665ae0825f508038338d30b2dffa144bd5579b52b882263152",
    "document": "query Semesters {\n  semesters {\n    id\n    name\n    registrationStart\n    registrationEnd\n    isActive\n  }\n}"
  },
  "Swap": {
    "id": "sha256:1258794552fa209c874fbdbacc18522acb56e33ff8f4a7f5d067df75637e56ac",
    "document": "mutation Swap($input: SwapInput!) {\n  swap(input: $input) {\n    studentId\n    outcome\n    reason\n    waitlistPosition\n  }\n}"
  },
  "WaitlistPosition": {
    "id": "sha256:a587ceb451d9a0acbd3f48ee3e365259e26fa1e872f61c5f9aa7353dbc430c57",
    "document": "subscription WaitlistPosition($studentId: UUID!, $sectionId: UUID!) {\n  waitlistPosition(studentId: $studentId, sectionId: $sectionId) {\n    sectionId\n    studentId\n    status\n    position\n    reason\n    expiresAt\n  }\n}"
  }
};
